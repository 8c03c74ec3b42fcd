"""Nets: the ``Net`` interface (base), the Caffe reader and engines (caffe/), your own PyTorch
module (module), the model registry and downloads (registry), and ``loading``, the one place
that knows every engine. Imports deepdream.io, errors, progress and this folder."""
