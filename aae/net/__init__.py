"""The network: the nine searched hyperparameters and named configs (``configs``), the
architecture settings that are not searched (``settings``, no Keras), the losses, the Keras
model, the keras-tuner hypermodel and resumable training (``training``)."""
