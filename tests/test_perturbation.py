import torch

from attacks.perturbation import gaussian_noise_at_snr, signal_power, snr_db


def test_noise_hits_the_requested_snr_and_leaves_padding_alone():
    generator = torch.Generator().manual_seed(0)
    clean = torch.randn(3, 16000, generator=generator) * torch.tensor([[0.1], [0.01], [0.3]])
    lengths = torch.tensor([16000, 12000, 8000])
    clean = clean * (torch.arange(16000)[None] < lengths[:, None])
    noisy = gaussian_noise_at_snr(clean, lengths, 10.0, generator)
    assert torch.allclose(snr_db(clean, noisy, lengths), torch.full((3,), 10.0), atol=1e-3)
    assert torch.all(noisy[1, 12000:] == 0) and torch.all(noisy[2, 8000:] == 0)
    assert torch.allclose(signal_power(clean, lengths), torch.tensor([0.01, 1e-4, 0.09]), rtol=0.05)
