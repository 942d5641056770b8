"""Data: meshes, rendering, crops, backgrounds, augmentation, the training set and its
augmented batches, synthetic objects and test sets, and BOP datasets.

Modules: ``mesh``, ``render`` (pyrender offscreen, Mesa loaded with RTLD_DEEPBIND), ``crop``,
``backgrounds``, ``augment``, ``settings`` (:class:`TrainingSetConfig`, no Keras),
``training_set`` (pre-rendered pairs and Keras batches), ``synthetic``, ``bop``. Nothing here
knows the network.
"""
