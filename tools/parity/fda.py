"""Goldens for FDA's amplitude swap (Yang & Soatto 2020), written in numpy from the paper's
description: per channel, the centred low-frequency square of the source's amplitude spectrum
(half side floor(min(H, W) * beta), plus the centre) takes the target's values; the source's phase
is kept; the real part of the inverse transform is the result. Float64, odd and even sizes."""
import numpy as np
import torch

from common import case_dir, save_safetensors


def fda_numpy(source, target, beta):
    spectrum = np.fft.fft2(source, axes=(-2, -1))
    amplitude = np.fft.fftshift(np.abs(spectrum), axes=(-2, -1))
    target_amplitude = np.fft.fftshift(np.abs(np.fft.fft2(target, axes=(-2, -1))), axes=(-2, -1))
    h, w = source.shape[-2:]
    half = int(np.floor(min(h, w) * beta))
    rows = slice(h // 2 - half, h // 2 + half + 1)
    cols = slice(w // 2 - half, w // 2 + half + 1)
    amplitude[..., rows, cols] = target_amplitude[..., rows, cols]
    amplitude = np.fft.ifftshift(amplitude, axes=(-2, -1))
    return np.real(np.fft.ifft2(amplitude * np.exp(1j * np.angle(spectrum)), axes=(-2, -1)))


def make(out):
    rng = np.random.default_rng(0)
    tensors = {}
    for name, shape, beta in (("even", (2, 3, 32, 48), 0.05), ("odd", (1, 3, 31, 45), 0.09)):
        source = rng.random(shape)
        target = rng.random(shape) * 0.5 + 0.25
        tensors[f"{name}.source"] = torch.from_numpy(source)
        tensors[f"{name}.target"] = torch.from_numpy(target)
        tensors[f"{name}.beta"] = torch.tensor([beta], dtype=torch.float64)
        tensors[f"{name}.output"] = torch.from_numpy(fda_numpy(source, target, beta))
    save_safetensors(f"{case_dir(out, 'fda')}/io.safetensors", tensors)
