"""Language-model programs: decoder-only LMs with the KV cache inside the program.

    python -m exporters.llm.export_lm --checkpoint runs/lm --recipe xnnpack-8da4w --out out/lm-et

One ``.pte`` holds ``forward(tokens int64 (1, T), input_pos int64 (1,)) -> logits (1, vocab)``
(the logits of the last token) and the constant methods ExecuTorch's LLM runners read
(``get_max_seq_len``, ``get_bos_id``, ``get_eos_ids``, ``use_kv_cache`` ...). The caches are
mutable buffers updated in place by ExecuTorch's ``llama::update_cache`` op and read by
``llama::custom_sdpa``; T is dynamic (1 <= T < max_seq_len), so a prompt of n tokens costs n
positions, not the window. The model is ExecuTorch's own Llama transformer
(``executorch.examples.models.llama``) filled with the checkpoint's Hugging Face weights, exported
with ``executorch.extension.llm.export.builder.LLMEdgeManager`` as ``export_llama`` does.

| file | role |
|---|---|
| ``spec.py`` | ``LMSpec``: the architecture facts of a Hugging Face decoder config, validated |
| ``weights.py`` | Hugging Face state dict -> ExecuTorch Llama state dict |
| ``recipes.py`` | LM recipes per format (``LMRecipe``, ``ONNXLMRecipe``, ``CoreMLLMRecipe``), registered Recipes |
| ``et_program.py`` | build, quantize (torchao configs), export and lower the program; metadata methods |
| ``runner.py`` | host runner: prefill / decode / greedy generation, window check |
| ``vectors.py`` | small binary test vectors (top-k logits + checksum, ``.npz``) |
| ``export_lm.py`` | checkpoint directory -> validated ExecuTorch artifact (no task); shared manifest helpers |
| ``formats.py`` | what each format writes for an LM program and its host runner (``Format.export_lm``) |
| ``artifact.py`` | checkpoint + LM task -> validated artifact of any format (``export_lm_artifact``); the metric |
| ``onnx_program.py`` | ONNX decoder with past (Optimum's export) and its IO-binding runner |
| ``onnx_artifact.py`` | checkpoint directory -> ONNX decoder-with-past artifact (``model.lm.kv_cache: "io"``) |
| ``protocol.py`` | ``model.lm`` read back and checked for consumers (SDKs): the generation protocols |
"""
