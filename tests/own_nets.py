"""PyTorch nets of a user's own, for the tests of --model FILE.py:FACTORY (plain torch.nn:
torchvision does not import with the CPU torch we pin)."""
import torch
from torch import nn


class Counter(nn.Module):
    """The identity, counting its calls: shows how far a forward pass went."""
    calls = 0

    def forward(self, x):
        Counter.calls += 1
        return x


class SmallNet(nn.Module):
    """A small classifier: two conv stages, a late layer that counts, average pool, 10 classes,
    and a module that its forward pass never uses."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.late = Counter()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        self.unused = nn.Linear(4, 4)

    def forward(self, x):
        x = self.late(self.features(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def small_net():
    """The factory: the same random weights every time."""
    torch.manual_seed(0)
    return SmallNet()


class FixedSize(nn.Module):
    """A net that takes 32x32 input only (as a ViT's patch embedding does), and asserts it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        assert x.shape[-2:] == (32, 32), f"input must be 32x32, not {tuple(x.shape[-2:])}"
        return self.conv(x)


def fixed_size():
    return FixedSize()


class NoMeta(nn.Module):
    """A net whose code needs real numbers (.item()), which the meta device has not; it
    notes the device and size of every input it is called with."""
    inputs = []

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.after = nn.Conv2d(4, 4, 3, stride=2)

    def forward(self, x):
        NoMeta.inputs.append((x.device.type, tuple(x.shape[-2:])))
        y = self.conv(x)
        return self.after(y * (1 + 0 * float(y.mean().item())))


def no_meta():
    return NoMeta()


def head_node_only():
    """A factory that works where the run starts and raises in a Ray worker (as a net that
    reads a file only the head node has would): ``small_net`` there."""
    import ray
    if ray.is_initialized() and ray.get_runtime_context().get_actor_id():
        raise RuntimeError("calibration.bin: no such file on this node")
    return small_net()
