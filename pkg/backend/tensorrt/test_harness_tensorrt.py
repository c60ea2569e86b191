"""Unit tests of harness_tensorrt.py's pure parts, with a bare python3
(TensorRT-LLM cannot be installed here). Run: PYTHONPATH=../pyharness
python3 -m unittest (pkg/backend/tensorrt's Go test does)."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyharness"))
sys.path.insert(0, HERE)

import harness_tensorrt as ht  # noqa: E402

# What params.BackendArgs produces for a tensorrt section (schema targets).
ARGS = {
    "llm": {"tensor_parallel_size": 1, "max_batch_size": 16,
            "kv_cache_config": {"free_gpu_memory_fraction": 0.8},
            "speculative_config": {"decoding_type": "NGram", "max_draft_len": 4, "max_matching_ngram_size": 2},
            "attention_dp_config": {"enable_balance": True}},
    "sampling": {"presence_penalty": 0.1},
    "llem": {"runtime": "pytorch", "enable_cuda_graph": False},
}


class KwargsTest(unittest.TestCase):
    def test_llm(self):
        kw = ht.llm_kwargs({"precision": "fp16"}, ARGS, "org/m", False)
        want = dict(ARGS["llm"], model="org/m", dtype="float16", cuda_graph_config=None)
        self.assertEqual(kw, want)
        kw = ht.llm_kwargs({}, {"llem": {"enable_cuda_graph": True}}, "/tmp/r", True)
        self.assertEqual((kw["load_format"], kw["skip_tokenizer_init"], kw["cuda_graph_config"]), ("dummy", True, {}))
        self.assertNotIn("cuda_graph_config", ht.llm_kwargs({}, {}, "m", False))
        # enable_cuda_graph: false would drop extra cuda_graph_config keys: an error.
        import llem_common as lc
        with self.assertRaises(lc.HarnessError):
            ht.llm_kwargs({}, {"llm": {"cuda_graph_config": {"enable_padding": True}},
                               "llem": {"enable_cuda_graph": False}}, "m", False)
        # extra: keys reach LLM() as given, null included (no silent drop).
        kw = ht.llm_kwargs({}, {"llm": {"moe_config": None, "reasoning_parser": None}}, "m", False)
        self.assertEqual((kw["moe_config"], kw["reasoning_parser"]), (None, None))

    def test_object_plan(self):
        kw = ht.llm_kwargs({}, ARGS, "m", False)
        self.assertEqual(sorted(ht.object_plan(kw)), [("attention_dp_config", "AttentionDpConfig"),
                                                      ("kv_cache_config", "KvCacheConfig"),
                                                      ("speculative_config", "NGramDecodingConfig")])
        import llem_common as lc
        for dt in ("Medusa", "Lookahead", "Eagle3", None):
            with self.assertRaises(lc.HarnessError):
                ht.object_plan({"speculative_config": {"decoding_type": dt, "max_draft_len": 2}})

    def test_guard_block_reuse(self):
        kw = {}
        self.assertTrue(ht.guard_block_reuse(kw))
        self.assertEqual(kw, {"kv_cache_config": {"enable_block_reuse": False}})
        kw = {"kv_cache_config": {"enable_block_reuse": True}}
        self.assertFalse(ht.guard_block_reuse(kw))
        self.assertTrue(kw["kv_cache_config"]["enable_block_reuse"])
        kw = {"kv_cache_config": {"free_gpu_memory_fraction": 0.5}}
        self.assertTrue(ht.guard_block_reuse(kw))
        self.assertEqual(kw["kv_cache_config"], {"free_gpu_memory_fraction": 0.5, "enable_block_reuse": False})

    def test_prompt_ids(self):
        import llem_common as lc

        class Tok:
            def encode(self, text):
                return [9] * len(text.split())

        self.assertEqual(ht.prompt_ids(lc.Prompt(token_ids=[1, 2, 3]), None, None, 2), [1, 2])
        self.assertEqual(ht.prompt_ids(lc.Prompt(text="a b c"), Tok(), None, 8), [9, 9, 9])
        self.assertEqual(len(ht.prompt_ids(lc.Prompt(text="a b c"), None, 100, 8)), 3)
        with self.assertRaises(lc.HarnessError):
            ht.prompt_ids(lc.Prompt(text="a"), None, None, 8)

    def test_version_note(self):
        self.assertEqual(ht.version_note("1.2.0", "1.2.0"), "tensorrt_llm 1.2.0, PyTorch runtime")
        self.assertIn("llem's schema follows 1.2.0", ht.version_note("1.0.0", "1.2.0"))
        self.assertEqual(ht.version_note("1.0.0", ""), "tensorrt_llm 1.0.0, PyTorch runtime")

    def test_harness_settings(self):
        self.assertEqual(ht.harness_settings({}), {"enable_cuda_graph": None, "runtime": "pytorch"})
        self.assertEqual(ht.harness_settings({"llem": {"enable_cuda_graph": True}})["enable_cuda_graph"], True)

    def test_sampling(self):
        g = ht.sampling_kwargs({"decoder": {"preset": "deterministic"}, "random_seed": 9}, ARGS, 16, forced=True)
        self.assertEqual(g, {"max_tokens": 16, "temperature": 0.0, "top_k": 1, "ignore_eos": True,
                             "presence_penalty": 0.1, "seed": 9})
        s = ht.sampling_kwargs({"decoder": {"temperature": 0.5, "top_k": 0, "min_new_tokens": 2}}, {}, 4)
        n = ht.sampling_kwargs({}, {"sampling": {"logprobs": None}}, 4)
        self.assertIn("logprobs", n)
        self.assertEqual(s, {"max_tokens": 4, "temperature": 0.5, "top_p": 1.0, "min_tokens": 2, "seed": 42})


if __name__ == "__main__":
    unittest.main()
