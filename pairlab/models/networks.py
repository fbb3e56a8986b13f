"""Generators and discriminators, layer for layer as in the CycleGAN / pix2pix reference code
(junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``), so parameter counts match it exactly.

Paper 000, appendix "Architectures":
  CycleGAN generator   c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-3   (ResnetGenerator)
  CycleGAN/pix2pix D   C64-C128-C256-C512, 70x70 PatchGAN                  (NLayerDiscriminator, n_layers=3)
  pix2pix generator    U-Net, encoder C64-...-C512, decoder CD512-...-C64  (UnetGenerator)

As in the reference, a convolution followed by instance norm keeps its bias (instance norm without affine
parameters cannot absorb it) and one followed by batch norm drops it.

Speed (the numbers are the same functions; see ``pairlab.train.bench``):
  - the ResNet generator and the PatchGAN apply their ReLUs out of place: an in-place ReLU on the (view)
    output of instance norm makes autograd record copy-slices and as-strided backward copies every step;
    the U-Net keeps the reference's in-place activations because there they change what the skip carries.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def norm_layer(kind: str):
    """The reference's norm choices: instance norm has no affine parameters and no running statistics."""
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    raise ValueError(f"unknown norm {kind!r}")


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Reference 'normal' init: conv weights N(0, gain), biases 0; batch-norm scales N(1, gain)."""
    for m in net.modules():
        name = type(m).__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif name == "BatchNorm2d":
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class ResnetBlock(nn.Module):
    """Rk: two 3x3 convolutions with reflection padding and a skip connection."""

    def __init__(self, dim: int, norm: str = "instance", use_dropout: bool = False):
        super().__init__()
        make_norm = norm_layer(norm)
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(dim), nn.ReLU()]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-3, tanh."""

    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9, norm="instance", use_dropout=False):
        super().__init__()
        make_norm = norm_layer(norm)
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), make_norm(ngf), nn.ReLU()]
        for i in range(2):  # two stride-2 downsamplings: d128, d256
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                make_norm(ngf * mult * 2),
                nn.ReLU(),
            ]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, norm, use_dropout))
        for i in range(2):  # two fractionally strided convolutions: u128, u64
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(ngf * mult // 2),
                nn.ReLU(),
            ]
        # The last convolution has no norm after it, so it always keeps its bias (as in the reference).
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down -> submodule -> up, with the input concatenated to the output."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch", use_dropout=False):
        super().__init__()
        self.outermost = outermost
        make_norm = norm_layer(norm)
        bias = norm == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, uprelu, upconv, make_norm(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, make_norm(inner_nc), submodule, uprelu, upconv, make_norm(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


def unet_num_downs(image_size: int) -> int:
    """log2(size) levels bring the image down to 1x1: 6 for 64, 7 for 128, 8 for 256."""
    n = int(round(math.log2(image_size)))
    if 2**n != image_size or n < 5:
        raise ValueError(f"U-Net needs a power-of-two image size of at least 32, got {image_size}")
    return n


class UnetGenerator(nn.Module):
    """pix2pix U-Net. At 256 (num_downs 8): encoder C64-C128-C256-C512-C512-C512-C512-C512,
    decoder CD512-CD512-CD512-C512-C256-C128-C64; smaller images drop inner 512 levels."""

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=True):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm=norm)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: C64-C128-C256-C512 (n_layers=3 gives 70x70 receptive fields), then a 1-channel map.

    The first layer has no norm; the reference also keeps its bias.
    """

    def __init__(self, input_nc=3, ndf=64, n_layers=3, norm="instance"):
        super().__init__()
        make_norm = norm_layer(norm)
        bias = norm == "instance"
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias),
            make_norm(ndf * mult),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)
