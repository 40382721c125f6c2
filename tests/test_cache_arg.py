"""The KV cache reaches the model under the keyword its transformers version reads.

On transformers 5.17 (what the gpu extra resolves to) ``forward`` takes ``past_key_values`` and
swallows an unknown ``cache=`` in ``**kwargs``: the local engine then crashed on an empty cache
(seen on an H200, benchmarks/gpu/check.sh) and exact number scoring silently ignored the prompt.
"""

from embench.models.cache_arg import cache_kwargs


class _OldForward:  # transformers <= 5.17
    def forward(self, input_ids=None, past_key_values=None, use_cache=None, **kwargs):
        return past_key_values


class _NewForward:  # transformers 5.25
    def forward(self, input_ids=None, cache=None, use_cache=None, **kwargs):
        return cache


def test_old_forward_gets_past_key_values():
    model, kv = _OldForward(), object()
    assert cache_kwargs(model, kv) == {"past_key_values": kv}
    assert model.forward(**cache_kwargs(model, kv)) is kv


def test_new_forward_gets_cache():
    model, kv = _NewForward(), object()
    assert cache_kwargs(model, kv) == {"cache": kv}
    assert model.forward(**cache_kwargs(model, kv)) is kv


def test_installed_transformers_model_reads_the_cache_it_is_given(tiny_model_dir):
    """With the installed version: the cache we pass is the one the model fills."""
    import torch
    from transformers import AutoModelForCausalLM, DynamicCache

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    kv = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([[1, 2, 3]]), use_cache=True, **cache_kwargs(model, kv))
    assert kv.get_seq_length() == 3
