"""Picking one sequence's next token, with a grammar that costs little when the model obeys it.

llama-cpp-python puts a JSON grammar first in the sampler chain, so every token checks all
151,936 entries of Qwen's vocabulary against the grammar: a schema answer decoded at half the free
speed. Here the token is drawn freely first and only that one token is checked; the grammar runs
over the whole vocabulary only when the free choice breaks it (as llama.cpp's own server does).
The free chain is llama-cpp-python's default for chat (top-k 40, top-p 0.95, min-p 0.05), so
answers keep their character.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import numpy as np

TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05
RANDOM_SEED = 0xFFFFFFFF
"""llama.cpp's LLAMA_DEFAULT_SEED: a fresh random seed, what a request without a seed gets."""


def _llama() -> Any:
    import llama_cpp

    return llama_cpp


class TokenSampler:
    """One request's sampler: the free chain, and the grammar that constrains it if any."""

    def __init__(
        self,
        vocab: Any,
        n_vocab: int,
        *,
        temperature: float,
        seed: int | None,
        grammar: str | None,
    ) -> None:
        lib = _llama()
        self._lib = lib
        self._n_vocab = n_vocab
        self._chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if temperature <= 0:
            lib.llama_sampler_chain_add(self._chain, lib.llama_sampler_init_greedy())
        else:
            for stage in (
                lib.llama_sampler_init_top_k(TOP_K),
                lib.llama_sampler_init_top_p(TOP_P, 1),
                lib.llama_sampler_init_min_p(MIN_P, 1),
                lib.llama_sampler_init_temp(temperature),
                lib.llama_sampler_init_dist(RANDOM_SEED if seed is None else seed & 0xFFFFFFFF),
            ):
                lib.llama_sampler_chain_add(self._chain, stage)
        self._grammar: Any = None
        if grammar is not None:
            self._grammar = lib.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not self._grammar:
                self.close()
                raise ValueError("the JSON schema gives a grammar llama.cpp refuses")
        self._one = (lib.llama_token_data * 1)()
        self._one_array = lib.llama_token_data_array(self._one, 1, -1, False)

    def sample(self, ctx: Any, index: int) -> int:
        """The next token from the logits of batch row `index`, accepted into the grammar."""
        lib = self._lib
        token = int(lib.llama_sampler_sample(self._chain, ctx, index))
        if self._grammar is None:
            return token
        if not self._grammar_allows(token):
            token = self._sample_within_grammar(ctx, index)
        lib.llama_sampler_accept(self._grammar, token)
        return token

    def _grammar_allows(self, token: int) -> bool:
        self._one[0].id = token
        self._one[0].logit = 0.0
        self._one_array.size = 1
        self._one_array.selected = -1
        self._lib.llama_sampler_apply(self._grammar, ctypes.byref(self._one_array))
        return not math.isinf(self._one[0].logit)

    def _sample_within_grammar(self, ctx: Any, index: int) -> int:
        """The slow path: mask the whole vocabulary by the grammar, then draw from the rest."""
        lib = self._lib
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, index), (self._n_vocab,))
        data = (lib.llama_token_data * self._n_vocab)()
        view = np.frombuffer(
            data, dtype=np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        )
        view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        array = lib.llama_token_data_array(data, self._n_vocab, -1, False)
        lib.llama_sampler_apply(self._grammar, ctypes.byref(array))
        lib.llama_sampler_apply(self._chain, ctypes.byref(array))
        return int(array.data[array.selected].id)  # a sampler may have moved the entries

    def close(self) -> None:
        for sampler in (self._chain, self._grammar):
            if sampler:
                self._lib.llama_sampler_free(sampler)
        self._chain = self._grammar = None
