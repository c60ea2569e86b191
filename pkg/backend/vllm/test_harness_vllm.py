"""Unit tests of harness_vllm.py's pure parts, with a bare python3 (vLLM
cannot be installed here). Run: PYTHONPATH=../pyharness python3 -m unittest
(pkg/backend/vllm's Go test does, and also runs the whole harness against
testdata/fakevllm)."""

import io
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyharness"))
sys.path.insert(0, HERE)

import harness_vllm as hv  # noqa: E402
import llem_common as lc  # noqa: E402

ARGS = {
    "engine": {"gpu_memory_utilization": 0.8, "max_num_seqs": 64, "trust_remote_code": False,
               "speculative_config": {"model": "draft", "num_speculative_tokens": 4}},
    "sampling": {"min_tokens": 4, "presence_penalty": 0.5},
    "env": {"VLLM_X": "1"},
}


class KwargsTest(unittest.TestCase):
    def test_engine(self):
        kw = hv.engine_kwargs({"precision": "fp16", "random_seed": 3}, ARGS, "org/m", False)
        self.assertEqual(kw, {"model": "org/m", "dtype": "float16", "seed": 3, "gpu_memory_utilization": 0.8,
                              "max_num_seqs": 64, "trust_remote_code": False,
                              "speculative_config": {"model": "draft", "num_speculative_tokens": 4}})
        kw = hv.engine_kwargs({}, {}, "/tmp/x", True)
        self.assertEqual((kw["load_format"], kw["skip_tokenizer_init"], kw["dtype"]), ("dummy", True, "bfloat16"))

    def test_sampling(self):
        kw = hv.sampling_kwargs({"decoder": {"temperature": 0.8, "top_k": 0, "repetition_penalty": 1.2}},
                                ARGS, 32)
        self.assertEqual(kw, {"max_tokens": 32, "temperature": 0.8, "top_p": 1.0, "top_k": -1,
                              "repetition_penalty": 1.2, "min_tokens": 4, "presence_penalty": 0.5})
        g = hv.sampling_kwargs({"decoder": {"do_sample": False}}, {}, 8, detokenize=False, forced=True)
        self.assertEqual(g, {"max_tokens": 8, "temperature": 0.0, "ignore_eos": True, "detokenize": False})
        # sampling.max_tokens wins over the prompt's length.
        self.assertEqual(hv.sampling_kwargs({}, {"sampling": {"max_tokens": 5}}, 8)["max_tokens"], 5)

    def test_logit_bias_keys_become_token_ids(self):
        kw = hv.sampling_kwargs({}, {"sampling": {"logit_bias": {"42": -100, "7": 2}}}, 8)
        self.assertEqual(kw["logit_bias"], {42: -100.0, 7: 2.0})

    def test_extra_none_values_are_forwarded(self):
        kw = hv.engine_kwargs({}, {"engine": {"max_model_len": None}}, "m", None)
        self.assertIn("max_model_len", kw)
        self.assertIsNone(kw["max_model_len"])
        self.assertIsNone(hv.sampling_kwargs({}, {"sampling": {"seed": None}}, 8)["seed"])

    def test_prefill_only_drops_forcing(self):
        kw = hv.prefill_only({"max_tokens": 9, "min_tokens": 4, "ignore_eos": True, "n": 2, "temperature": 0})
        self.assertEqual(kw, {"max_tokens": 1, "temperature": 0})

    def test_env(self):
        env = {}
        hv.apply_env(ARGS, env)
        self.assertEqual(env, {"VLLM_X": "1"})

    def test_request_input(self):
        class Tok:
            def encode(self, text):
                return [11] * len(text.split()) + [12]

        self.assertEqual(hv.request_input(lc.Prompt(token_ids=[1, 2, 3]), 10, None, 2), {"prompt_token_ids": [1, 2]})
        self.assertEqual(hv.request_input(lc.Prompt(text="a b"), 10, Tok(), 8), {"prompt_token_ids": [11, 11, 12]})
        self.assertEqual(len(hv.request_input(lc.Prompt(text="a b"), 10, None, 8)["prompt_token_ids"]), 2)


class BeamSearchTest(unittest.TestCase):
    """vllm.beam_search through LLM.beam_search, against the fake vLLM
    (testdata/fakevllm), whose BeamSearchParams accepts exactly the pinned
    snapshot's names and requires beam_width and max_tokens."""

    def setUp(self):
        sys.path.insert(0, os.path.join(HERE, "testdata", "fakevllm"))
        import vllm
        self.vllm = vllm

    def test_kwargs(self):
        kw = hv.beam_search_kwargs({"decoder": {"do_sample": False}}, {"beam_search": {"beam_width": 3}}, 16)
        self.assertEqual(kw, {"max_tokens": 16, "temperature": 0.0, "beam_width": 3})
        kw = hv.beam_search_kwargs({"decoder": {"temperature": 0.7, "do_sample": True}},
                                   {"beam_search": {"beam_width": 2, "max_tokens": 4}}, 16)
        self.assertEqual((kw["max_tokens"], kw["temperature"]), (4, 0.7))
        self.vllm.BeamSearchParams(**kw)  # accepted by the snapshot's BeamSearchParams

    def test_fake_rejects(self):
        with self.assertRaises(TypeError):
            self.vllm.BeamSearchParams(beam_width=2)  # max_tokens is required upstream
        with self.assertRaises(TypeError):
            self.vllm.BeamSearchParams(beam_width=2, max_tokens=4, n=2)

    def test_run(self):
        llm = self.vllm.LLM(model="m", attention_config={"backend": "FLASH_ATTN"})
        params = self.vllm.BeamSearchParams(**hv.beam_search_kwargs({}, {"beam_search": {"beam_width": 2}}, 5))
        tr = lc.StreamTracker(0)
        hv.run_beam_search(llm, [{"prompt_token_ids": [5, 6]}, {"prompt_token_ids": [5, 2]}], params, tr)
        rs = tr.results(2, 10)
        self.assertEqual([(r.input_tokens, r.output_tokens, r.finish_reason) for r in rs],
                         [(2, 5, "length"), (2, 2, "stop")])


class TrackerTest(unittest.TestCase):
    def test_stream_tracker(self):
        tr = lc.StreamTracker(100)
        tr.observe(0, 1, 110, 5)
        tr.observe(1, 2, 115, 3)       # speculative decoding can deliver two tokens at once
        tr.observe(0, 1, 120, None, True, "length")
        tr.observe(1, 1, 125, None, True, "stop")
        rs = tr.results(2, 130)
        self.assertEqual([(r.input_tokens, r.output_tokens, r.ttft_ns, r.itl_ns, r.end_ns, r.finish_reason)
                          for r in rs],
                         [(5, 2, 10, [10], 120, "length"), (3, 3, 15, [0, 10], 125, "stop")])
        self.assertEqual(tr.first_token_boundary(), 115)

    def test_unknown_reason_and_missing_request(self):
        tr = lc.StreamTracker(100)
        tr.observe(0, 1, 110, 2, True, "abort")
        rs = tr.results(2, 130)
        self.assertEqual(rs[0].finish_reason, "")
        self.assertEqual((rs[1].output_tokens, rs[1].end_ns), (0, 130))

    def test_window_events_consistent(self):
        buf = io.StringIO()
        em = lc.Emitter(buf, lambda: 1)
        rs = [lc.timings_from_token_times(0, 0, 4, 50, [60, 70], 70, "length"),
              lc.timings_from_token_times(1, 0, 6, 50, [65], 65, "stop")]
        lc.emit_prefill_pass_window(em, rs, 10, 20, 50, 80)
        ev = [json.loads(x) for x in buf.getvalue().splitlines()]
        self.assertEqual([(e["name"], e["state"], e["t_ns"]) for e in ev[:4]],
                         [("prefill", "start", 10), ("prefill", "end", 20), ("decode", "start", 50),
                          ("decode", "end", 80)])
        self.assertEqual((ev[1]["input_tokens"], ev[1]["output_tokens"], ev[3]["output_tokens"]), (10, 2, 1))


if __name__ == "__main__":
    unittest.main()
