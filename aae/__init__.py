"""The Augmented Autoencoder (Sundermeyer et al.) for 6D object pose estimation, in Keras 3.

Geometry is in millimetres throughout (the BOP convention): mesh vertices, translations,
depth maps and object diameters. Rotations are 3x3 model-to-camera matrices in the OpenCV
camera frame (x right, y down, z forward). Images are RGB, uint8 on disk and float32 in
[0, 1] when they enter a network.
"""
