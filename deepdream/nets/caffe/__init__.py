"""Caffe nets: the prototxt/caffemodel reader (format, caffe_pb2 from caffe.proto), their
layers on PyTorch (torch_net) and a real pycaffe (pycaffe). Imports deepdream.nets.base,
errors and this folder."""
