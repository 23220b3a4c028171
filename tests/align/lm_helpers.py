"""A trained-looking policy for the log-prob tests: a tiny LM with seeded noise on its weights."""

import torch
from transformers import AutoModelForCausalLM


def perturbed_copy(src, out, tokenizer, scale: float = 0.3, seed: int = 0):
    """Save ``src``'s model plus ``scale``·N(0, 1) noise (seeded) and ``tokenizer`` to ``out``."""
    model = AutoModelForCausalLM.from_pretrained(src)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
