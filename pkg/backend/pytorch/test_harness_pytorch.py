"""Unit tests of harness_pytorch.py's pure parts, with a bare python3 (no
torch, no transformers). Run: PYTHONPATH=../pyharness python3 -m unittest
(pkg/backend/pytorch's Go test does)."""

import io
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyharness"))
sys.path.insert(0, HERE)

import harness_pytorch as hp  # noqa: E402
import llem_common as lc  # noqa: E402


class Recorder(lc.Emitter):
    def __init__(self):
        self.buf = io.StringIO()
        t = [0]

        def clock():
            t[0] += 1
            return t[0]
        super().__init__(self.buf, clock)

    def events(self):
        return [json.loads(x) for x in self.buf.getvalue().splitlines()]


# What params.BackendArgs produces for a pytorch section (schema targets).
ARGS = {
    "llem": {"batch_size": 4, "batching": "sorted", "torch_compile": True},
    "from_pretrained": {"device_map": "auto", "trust_remote_code": False, "attn_implementation": "sdpa",
                        "quantization_config": {"load_in_4bit": False, "load_in_8bit": False}},
    "generate": {"num_beams": 2, "use_cache": True, "top_k": 7},
    "compile": {"mode": "reduce-overhead"},
}


class KwargsTest(unittest.TestCase):
    def test_knobs_from_backend_args_then_config(self):
        self.assertEqual(hp.knobs({}, ARGS), {"batch_size": 4, "batching": "sorted", "torch_compile": True})
        self.assertEqual(hp.knobs({"pytorch": {"batch_size": 8}}, {}),
                         {"batch_size": 8, "batching": "fixed", "torch_compile": False})

    def test_from_pretrained_applies_args_untouched(self):
        kw = hp.from_pretrained_kwargs({"precision": "fp16", "passthrough_kwargs": {"foo": 1}}, ARGS, "dtype")
        self.assertEqual(kw, {"dtype": "float16", "device_map": "auto", "trust_remote_code": False,
                              "attn_implementation": "sdpa", "foo": 1})

    def test_quantization_kept_only_when_asked(self):
        args = {"from_pretrained": {"quantization_config": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}}}
        kw = hp.from_pretrained_kwargs({}, args, "torch_dtype")
        self.assertEqual(kw["quantization_config"], {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"})
        self.assertEqual(kw["torch_dtype"], "bfloat16")
        self.assertEqual(hp.loaded_dtype({}, args), "int4")
        self.assertEqual(hp.loaded_dtype({"precision": "fp32"}, ARGS), "fp32")
        with self.assertRaises(lc.HarnessError):
            hp.from_config_kwargs(kw)

    def test_from_config_keeps_only_what_applies(self):
        kw = hp.from_pretrained_kwargs({}, ARGS, "dtype")
        self.assertEqual(hp.from_config_kwargs(kw), {"dtype": "bfloat16", "attn_implementation": "sdpa"})

    def test_non_bitsandbytes_quantization_is_routed_not_dropped(self):
        # extra: from_pretrained: quantization_config: {quant_method: ...}
        # merged over the schema's false switches.
        q = {"load_in_4bit": False, "load_in_8bit": False, "quant_method": "torchao", "quant_type": "int4_weight_only"}
        kw = hp.from_pretrained_kwargs({}, {"from_pretrained": {"quantization_config": q}}, "dtype")
        self.assertEqual(kw["quantization_config"], {"quant_method": "torchao", "quant_type": "int4_weight_only"})
        with self.assertRaises(lc.HarnessError):
            hp.from_config_kwargs(kw)

    def test_quantization_keys_that_ask_for_nothing_are_errors(self):
        for q, msg in [
            ({"load_in_4bit": False, "load_in_8bit": False, "llm_int8_skip_modules": ["lm_head"]}, "ask for no quantization"),
            ({"load_in_4bit": True, "quant_method": "hqq"}, "two quantizations"),
            ({"load_in_4bit": False, "quant_method": "hqq", "bnb_4bit_quant_type": "nf4"}, "bitsandbytes options"),
        ]:
            with self.assertRaisesRegex(lc.SpecError, msg):
                hp.from_pretrained_kwargs({}, {"from_pretrained": {"quantization_config": q}}, "dtype")
        # bitsandbytes with extra BitsAndBytesConfig keys stays whole.
        q = {"load_in_8bit": True, "llm_int8_skip_modules": ["lm_head"]}
        kw = hp.from_pretrained_kwargs({}, {"from_pretrained": {"quantization_config": q}}, "dtype")
        self.assertEqual(kw["quantization_config"], q)

    def test_build_quantization_config(self):
        import types

        class BitsAndBytesConfig:
            def __init__(self, **kw):
                self.kw = kw

        class AutoQuantizationConfig:
            @staticmethod
            def from_dict(d):
                return ("auto", d)

        tf = types.ModuleType("transformers")
        tf.BitsAndBytesConfig = BitsAndBytesConfig
        quant = types.ModuleType("transformers.quantizers")
        auto = types.ModuleType("transformers.quantizers.auto")
        auto.AutoQuantizationConfig = AutoQuantizationConfig
        torch = types.SimpleNamespace(bfloat16="torch.bfloat16")
        saved = {k: sys.modules.get(k) for k in ("transformers", "transformers.quantizers", "transformers.quantizers.auto")}
        sys.modules.update({"transformers": tf, "transformers.quantizers": quant, "transformers.quantizers.auto": auto})
        try:
            b = hp.build_quantization_config({"load_in_4bit": True, "bnb_4bit_compute_dtype": "bfloat16"}, torch, tf)
            self.assertEqual(b.kw, {"load_in_4bit": True, "bnb_4bit_compute_dtype": "torch.bfloat16"})
            self.assertEqual(hp.build_quantization_config({"quant_method": "fp8"}, torch, tf), ("auto", {"quant_method": "fp8"}))
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v

    def test_from_config_refuses_what_it_cannot_apply(self):
        for extra in [{"revision": "v1"}, {"use_kernels": True}, {"device_map": "cpu"}, {"trust_remote_code": True},
                      {"max_memory": {"0": "10GiB"}}, {"offload_buffers": None}]:
            args = {"from_pretrained": dict(ARGS["from_pretrained"], **extra)}
            kw = hp.from_pretrained_kwargs({}, args, "dtype")
            with self.assertRaisesRegex(lc.HarnessError, "do not apply to random") as cm:
                hp.from_config_kwargs(kw)
            self.assertIn(next(iter(extra)), str(cm.exception))

    def test_extra_none_values_are_forwarded(self):
        kw = hp.generate_kwargs({}, {"generate": {"max_time": None}})
        self.assertIn("max_time", kw)
        self.assertIsNone(kw["max_time"])

    def test_whole_floats_stay_floats(self):
        # JSON carries -1.0 as -1; transformers 5.17 refused
        # sequence_bias [[[5], -1]] on the H200 (docs/validation.md).
        kw = hp.generate_kwargs({}, {"generate": {"sequence_bias": [[[5], -1], [[6, 7], 0.5]],
                                                   "exponential_decay_length_penalty": [4, 1]}})
        self.assertEqual(kw["sequence_bias"], [[[5], -1.0], [[6, 7], 0.5]])
        self.assertIsInstance(kw["sequence_bias"][0][1], float)
        self.assertEqual(kw["exponential_decay_length_penalty"], (4, 1.0))
        self.assertIsInstance(kw["exponential_decay_length_penalty"][1], float)

    def test_paged_cache_refused(self):
        # through extra: too (the schema refuses the first-class value)
        with self.assertRaisesRegex(lc.SpecError, "does not drive generate_batch"):
            hp.generate_kwargs({}, {"generate": {"cache_implementation": "paged"}})

    def test_generate_companions(self):
        with self.assertRaisesRegex(lc.HarnessError, "token_healing needs the model's tokenizer"):
            hp.generate_companions({"token_healing": True}, {}, {}, None)
        tok = object()
        kw = hp.generate_companions({"token_healing": True}, {}, {}, tok)
        self.assertIs(kw["tokenizer"], tok)
        kw = hp.generate_companions({"assistant_model": "org/draft", "assistant_lookbehind": 4}, {}, {}, tok,
                                    load_tokenizer=lambda name: "tok:" + name)
        self.assertEqual((kw["tokenizer"], kw["assistant_tokenizer"]), (tok, "tok:org/draft"))
        kw = hp.generate_companions({"custom_generate": "transformers-community/dola"}, {},
                                    {"from_pretrained": {"trust_remote_code": True}}, tok)
        self.assertIs(kw["trust_remote_code"], True)
        self.assertNotIn("tokenizer", kw)

    def test_watermarking_config_becomes_the_transformers_object(self):
        class WatermarkingConfig:
            def __init__(self, **kw):
                self.kw = kw

        class FakeTransformers:
            __version__ = "5.17.0"
            CompileConfig = None

        FakeTransformers.WatermarkingConfig = WatermarkingConfig
        kw = hp.wrap_config_objects({"watermarking_config": {"greenlist_ratio": 0.25}}, FakeTransformers)
        self.assertEqual(kw["watermarking_config"].kw, {"greenlist_ratio": 0.25})

    def test_kernel_config_becomes_the_transformers_object(self):
        class KernelConfig:
            def __init__(self, **kw):
                self.kw = kw

        class FakeTransformers:
            __version__ = "5.17.0"
            KernelConfig = None

        FakeTransformers.KernelConfig = KernelConfig
        kw = hp.wrap_config_objects({"kernel_config": {"use_local_kernel": False}}, FakeTransformers,
                                    hp.FROM_PRETRAINED_OBJECTS)
        self.assertEqual(kw["kernel_config"].kw, {"use_local_kernel": False})

    def test_generate_sampling_and_greedy(self):
        kw = hp.generate_kwargs({"decoder": {"temperature": 0.7, "top_p": 0.9, "min_p": 0.05,
                                             "min_new_tokens": 3}}, ARGS)
        self.assertEqual(kw, {"do_sample": True, "temperature": 0.7, "top_k": 7, "top_p": 0.9, "min_p": 0.05,
                              "repetition_penalty": 1.0, "min_new_tokens": 3, "num_beams": 2,
                              "use_cache": True})
        g = hp.generate_kwargs({"decoder": {"preset": "deterministic", "top_p": 0.5}}, {})
        self.assertEqual(g, {"do_sample": False, "repetition_penalty": 1.0})

    def test_compile_config_becomes_the_transformers_object(self):
        class CompileConfig:
            def __init__(self, **kw):
                self.kw = kw

        class FakeTransformers:
            __version__ = "5.0"

        FakeTransformers.CompileConfig = CompileConfig
        kw = hp.wrap_config_objects({"compile_config": {"fullgraph": True}, "top_k": 3}, FakeTransformers)
        self.assertIsInstance(kw["compile_config"], CompileConfig)
        self.assertEqual(kw["compile_config"].kw, {"fullgraph": True})
        self.assertEqual(kw["top_k"], 3)

        class OldTransformers:
            __version__ = "4.40"
        with self.assertRaisesRegex(lc.SpecError, "no CompileConfig"):
            hp.wrap_config_objects({"compile_config": {}}, OldTransformers)

    def test_dtype_kwarg_name(self):
        for v, want in [("4.49.0", "torch_dtype"), ("4.56.0", "dtype"), ("5.17.0", "dtype"),
                        ("4.57.0.dev0", "dtype"), ("4", "torch_dtype")]:
            self.assertEqual(hp.dtype_kwarg_name(v), want, v)


class BatchTest(unittest.TestCase):
    def test_batch_inputs_left_pads_and_truncates(self):
        prompts = [lc.Prompt(token_ids=[10, 11, 12, 13]), lc.Prompt(text="hi there", max_tokens=3)]
        rows = hp.token_rows(prompts, None, 3, 100)
        self.assertEqual([len(r) for r in rows], [3, 2])
        ids, mask, row_max = hp.batch_inputs(rows, prompts, [0, 1], 0)
        self.assertEqual(len(ids[0]), 3)
        self.assertEqual(ids[0], [10, 11, 12])
        self.assertEqual(mask[1], [0, 1, 1])
        self.assertEqual(row_max, [0, 3])

    def test_results_exclude_padding_and_post_eos(self):
        # Two rows, prompt lengths 3 and 1 (padded to 3); EOS = 2.
        mask = [[1, 1, 1], [0, 0, 1]]
        new = [[5, 2, 0, 0], [6, 7, 8, 9]]  # row 0 stops at EOS (pad 0 after), row 1 runs to length
        steps = [110, 120, 130, 140]
        rs = hp.batch_results(3, [4, 9], mask, new, [4, 4], [2], 0, 100, steps, 150)
        self.assertEqual([(r.index, r.batch, r.input_tokens, r.output_tokens, r.finish_reason) for r in rs],
                         [(4, 3, 3, 2, "eos"), (9, 3, 1, 4, "length")])
        self.assertEqual(rs[0].ttft_ns, 10)
        self.assertEqual(rs[0].itl_ns, [10])
        self.assertEqual(rs[1].itl_ns, [10, 10, 10])
        # A row's own max_tokens caps its count (batch generated more).
        rs = hp.batch_results(0, [0], [[1]], [[6, 7, 8, 9]], [2], [2], 0, 100, steps, 150)
        self.assertEqual((rs[0].output_tokens, rs[0].finish_reason), (2, "length"))

    def test_emit_batch_is_consistent(self):
        em = Recorder()
        mask = [[1, 1, 1], [0, 0, 1]]
        new = [[2, 0], [6, 7]]
        steps = [110, 120]
        rs = hp.batch_results(0, [0, 1], mask, new, [2, 2], [2], 0, 100, steps, 130)
        hp.emit_batch(em, 0, rs, 100, steps, 130)
        ev = em.events()
        phases = [(e["name"], e["state"], e["t_ns"]) for e in ev if e["event"] == "phase"]
        self.assertEqual(phases, [("prefill", "start", 100), ("prefill", "end", 110),
                                  ("decode", "start", 110), ("decode", "end", 130)])
        pend = ev[1]
        dend = ev[3]
        reqs = [e for e in ev if e["event"] == "request"]
        self.assertEqual(pend["input_tokens"], sum(r["input_tokens"] for r in reqs))
        self.assertEqual(pend["output_tokens"] + dend["output_tokens"], sum(r["output_tokens"] for r in reqs))
        self.assertEqual(pend["input_tokens"], 4)

    def test_no_decode_pair_when_all_stop_at_first_token(self):
        em = Recorder()
        rs = hp.batch_results(0, [0], [[1]], [[2]], [1], [2], 0, 100, [110], 111)
        hp.emit_batch(em, 0, rs, 100, [110], 111)
        self.assertEqual([e.get("name") for e in em.events() if e["event"] == "phase"], ["prefill", "prefill"])


if __name__ == "__main__":
    unittest.main()
