"""A tiny pretrained-style LM for the SDK tests: a transformers Llama with its own tokenizer.json.

    .venv/bin/python -c "from tests.tiny_bpe_llama import make; print(make('/tmp/tiny'))"

A 300-token byte-level BPE is trained with the ``tokenizers`` library on generated Python lines and
saved as a Hugging Face ``tokenizer.json`` (``PreTrainedTokenizerFast.save_pretrained``); a 2-layer
``LlamaForCausalLM`` (GQA, tied embeddings) is trained 60 AdamW steps on the same lines so that greedy
generation is not a constant, and saved with ``save_pretrained`` (safetensors). A few seconds on 1 CPU.
"""

from __future__ import annotations

from pathlib import Path

LINES = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(120)]
BOS, EOS = "<s>", "<|endoftext|>"


def make(out: str | Path, steps: int = 60) -> Path:
    """Write the checkpoint directory ``out`` (config, safetensors, tokenizer.json); return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok.train_from_iterator(
        LINES, trainers.BpeTrainer(vocab_size=300, special_tokens=[EOS, BOS], initial_alphabet=alphabet)
    )
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=tok.token_to_id(BOS),
        eos_token_id=tok.token_to_id(EOS),
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    ids = [tok.token_to_id(EOS)]
    for line in LINES:
        ids += tok.encode(line).ids + [tok.token_to_id(EOS)]
    data = torch.tensor(ids[: len(ids) // 32 * 32]).view(-1, 32)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = data[(step * 8) % len(data) :][:8]
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().save_pretrained(out, safe_serialization=True)
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS).save_pretrained(out)
    return out
