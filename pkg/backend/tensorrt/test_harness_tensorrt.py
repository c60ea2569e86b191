"""Unit tests of harness_tensorrt.py's pure parts, with a bare python3
(TensorRT-LLM cannot be installed here). Run: PYTHONPATH=../pyharness
python3 -m unittest (pkg/backend/tensorrt's Go test does)."""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyharness"))
sys.path.insert(0, HERE)

import harness_tensorrt as ht  # noqa: E402

# What params.BackendArgs produces for a tensorrt section (schema targets).
ARGS = {
    "llm": {"tensor_parallel_size": 1, "max_batch_size": 16, "backend": "tensorrt",
            "kv_cache_config": {"free_gpu_memory_fraction": 0.8},
            "speculative_config": {"decoding_type": "NGram", "max_draft_len": 4},
            "build_config": {"strongly_typed": True, "plugin_config": {"use_paged_context_fmha": True}}},
    "sampling": {"presence_penalty": 0.1},
    "llem": {"engine_cache": True, "enable_cuda_graph": False},
}


class KwargsTest(unittest.TestCase):
    def test_llm(self):
        kw = ht.llm_kwargs({"precision": "fp16"}, ARGS, "org/m", False)
        want = dict(ARGS["llm"], model="org/m", dtype="float16", cuda_graph_config=None)
        self.assertEqual(kw, want)
        kw = ht.llm_kwargs({}, {"llem": {"enable_cuda_graph": True}}, "/tmp/r", True)
        self.assertEqual((kw["load_format"], kw["skip_tokenizer_init"], kw["cuda_graph_config"]), ("dummy", True, {}))
        self.assertNotIn("cuda_graph_config", ht.llm_kwargs({}, {}, "m", False))

    def test_object_plan(self):
        kw = ht.llm_kwargs({}, ARGS, "m", False)
        self.assertEqual(sorted(ht.object_plan(kw)), [("build_config", "BuildConfig"),
                                                      ("kv_cache_config", "KvCacheConfig"),
                                                      ("speculative_config", "NGramDecodingConfig")])

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

    def test_harness_settings(self):
        self.assertEqual(ht.harness_settings({}), {"engine_cache": True, "engine_path": None,
                                                   "enable_cuda_graph": None})
        self.assertEqual(ht.harness_settings({"llem": {"engine_path": "/e", "engine_cache": False}})["engine_path"],
                         "/e")

    def test_sampling(self):
        g = ht.sampling_kwargs({"decoder": {"preset": "deterministic"}, "random_seed": 9}, ARGS, 16, forced=True)
        self.assertEqual(g, {"max_tokens": 16, "temperature": 0.0, "top_k": 1, "ignore_eos": True,
                             "presence_penalty": 0.1, "seed": 9})
        s = ht.sampling_kwargs({"decoder": {"temperature": 0.5, "top_k": 0, "min_new_tokens": 2}}, {}, 4)
        self.assertEqual(s, {"max_tokens": 4, "temperature": 0.5, "top_p": 1.0, "min_tokens": 2, "seed": 42})

    def test_builds_engine(self):
        cases = [({"backend": "tensorrt"}, "1.0.0", True), ({"backend": "pytorch"}, "0.20.0", False),
                 ({}, "0.21.0", True), ({}, "1.2.0rc1", False),
                 ({}, "weird", False)]
        for kw, v, want in cases:
            self.assertEqual(ht.builds_engine(kw, v), want, (kw, v))

    def test_cache_key(self):
        a = ht.engine_cache_key({"model": "m", "dtype": "float16", "build_config": {"a": 1, "b": 2}}, "0.21", "H100")
        b = ht.engine_cache_key({"build_config": {"b": 2, "a": 1}, "dtype": "float16", "model": "m"}, "0.21", "H100")
        self.assertEqual(a, b)
        self.assertEqual(len(a), 16)
        for other in [({"model": "m", "dtype": "bfloat16", "build_config": {"a": 1, "b": 2}}, "0.21", "H100"),
                      ({"model": "m", "dtype": "float16", "build_config": {"a": 1, "b": 3}}, "0.21", "H100"),
                      ({"model": "m", "dtype": "float16", "build_config": {"a": 1, "b": 2}}, "0.22", "H100"),
                      ({"model": "m", "dtype": "float16", "build_config": {"a": 1, "b": 2}}, "0.21", "A100")]:
            self.assertNotEqual(ht.engine_cache_key(*other), a)

    def test_cache_dir(self):
        self.assertEqual(ht.engine_cache_root({"LLEM_TRT_ENGINE_CACHE": "/x"}), "/x")
        self.assertEqual(ht.engine_cache_root({"XDG_CACHE_HOME": "/c"}), "/c/llem/trt-engines")
        self.assertEqual(ht.engine_cache_root({"LLEM_CACHE_DIR": "/l", "XDG_CACHE_HOME": "/c"}), "/l/trt-engines")
        with tempfile.TemporaryDirectory() as root:
            self.assertIsNone(ht.cached_engine(root, "k"))
            d = os.path.join(root, "k")
            os.makedirs(d)
            self.assertIsNone(ht.cached_engine(root, "k"))  # interrupted build: no metadata
            ht.write_cache_metadata(d, "k", {"model": "m"}, "0.21", "H100", 5)
            self.assertEqual(ht.cached_engine(root, "k"), d)


if __name__ == "__main__":
    unittest.main()
