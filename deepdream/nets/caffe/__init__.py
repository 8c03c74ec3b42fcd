"""Caffe nets: the prototxt/caffemodel reader (format, caffe_pb2 from caffe.proto), their
layers and nets on PyTorch (layers, torch_net) and a real pycaffe (pycaffe). Imports
deepdream.nets, errors and this folder."""
