"""Unit tests of llem_common's pure parts; run with a bare python3:
python3 -m unittest discover -s pkg/backend/pyharness -p 'test_*.py'
(pkg/backend/pyharness's Go test runs them)."""

import io
import json
import os
import random
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import llem_common as lc  # noqa: E402


def clock(start=1000, step=10):
    t = [start - step]

    def now():
        t[0] += step
        return t[0]
    return now


class FakeTokenizer:
    """Whitespace tokenizer with one token per word (enough to test
    exact-length text; real BPE is exercised on the GPU machine)."""

    def encode(self, text, add_special_tokens=False):
        return [hash(w) % 1000 for w in text.split()]

    def decode(self, ids):
        return " ".join("w%d" % i for i in ids)


class EmitterTest(unittest.TestCase):
    def setUp(self):
        self.buf = io.StringIO()
        self.em = lc.Emitter(self.buf, clock())

    def lines(self):
        return [json.loads(x) for x in self.buf.getvalue().splitlines()]

    def test_envelope_and_fields(self):
        self.em.hello("pytorch", {"torch": "2.11.0", "missing": None})
        self.em.loaded("random:llama-15m", 15_000_000, 6, "bf16", 0, 42, architecture="LlamaForCausalLM")
        self.em.warmup_done(2)
        self.em.phase("prefill", "start", 0, 2)
        self.em.phase("prefill", "end", 0, 2, input_tokens=8, output_tokens=2, t_ns=5)
        r = lc.RequestTiming(0, 0, 4, 3, 100, 10, 200, [5, 6], "length")
        self.em.request(r)
        self.em.log("hi")
        self.em.done(1, 4, 3)
        self.em.error("oom", "boom", "")
        got = self.lines()
        self.assertEqual([g["event"] for g in got],
                         ["hello", "loaded", "warmup_done", "phase", "phase", "request", "log", "done", "error"])
        self.assertEqual(got[0], {"event": "hello", "t_ns": 1000, "backend": "pytorch", "protocol_version": 1,
                                  "versions": {"torch": "2.11.0"}, "pid": os.getpid()})
        # omitempty fields are left out exactly as the Go encoder would.
        self.assertNotIn("memory_bytes", got[1])
        self.assertEqual(got[1]["architecture"], "LlamaForCausalLM")
        self.assertNotIn("input_tokens", got[3])
        self.assertEqual(got[4]["t_ns"], 5)
        self.assertEqual(got[5], {"event": "request", "t_ns": got[5]["t_ns"], "index": 0, "batch": 0,
                                  "input_tokens": 4, "output_tokens": 3, "start_ns": 100, "ttft_ns": 10,
                                  "end_ns": 200, "itl_ns": [5, 6], "finish_reason": "length"})
        self.assertNotIn("hint", got[8])
        for g in got:
            self.assertIsInstance(g["t_ns"], int)

    def test_one_line_per_event_even_with_newlines_in_text(self):
        self.em.log("two\nlines")
        self.assertEqual(len(self.buf.getvalue().splitlines()), 1)


class TimingTest(unittest.TestCase):
    def test_token_times(self):
        r = lc.timings_from_token_times(3, 1, 7, 100, [150, 160, 175], 180, "eos")
        self.assertEqual((r.ttft_ns, r.itl_ns, r.output_tokens, r.end_ns), (50, [10, 15], 3, 180))

    def test_no_tokens(self):
        r = lc.timings_from_token_times(0, 0, 7, 100, [], 180, "length")
        self.assertEqual((r.ttft_ns, r.itl_ns, r.output_tokens), (0, [], 0))


class SpecTest(unittest.TestCase):
    def test_read(self):
        spec = lc.read_spec(io.StringIO(json.dumps({"protocol_version": 1, "run_id": "x", "cycle": 0,
                                                    "config": {"model": "m"}})))
        self.assertEqual(spec["backend_args"], {})
        self.assertEqual(spec["prompts"], [])

    def test_errors(self):
        cases = ["", "{", "[]", json.dumps({"protocol_version": 2, "config": {}}),
                 json.dumps({"protocol_version": 1})]
        for raw in cases:
            with self.subTest(raw=raw), self.assertRaises(lc.ProtocolError if raw != cases[-1] else lc.SpecError):
                lc.read_spec(io.StringIO(raw))

    def test_cfg_get(self):
        cfg = {"a": {"b": None, "c": 3}}
        self.assertEqual(lc.cfg_get(cfg, "a.b", 7), 7)
        self.assertEqual(lc.cfg_get(cfg, "a.c", 7), 3)
        self.assertEqual(lc.cfg_get(cfg, "x.y", 7), 7)

    def test_decoder_presets_and_greedy(self):
        d = lc.decoder_settings({"decoder": {"preset": "creative", "temperature": 0.5}})
        self.assertEqual((d["temperature"], d["top_p"], d["repetition_penalty"]), (0.5, 0.9, 1.1))
        self.assertTrue(lc.is_greedy(lc.decoder_settings({"decoder": {"preset": "deterministic"}})))
        self.assertTrue(lc.is_greedy({"temperature": 0.0, "do_sample": True}))
        self.assertFalse(lc.is_greedy(lc.decoder_settings({})))
        with self.assertRaises(lc.SpecError):
            lc.decoder_settings({"decoder": {"preset": "wild"}})

    def test_prompts_from_spec(self):
        got = lc.prompts_from_spec({"prompts": [{"text": "a"}, {"token_ids": [1, 2], "max_tokens": 4},
                                                {"text": "ignored", "token_ids": [9]}]})
        self.assertEqual(got, [lc.Prompt(text="a"), lc.Prompt(token_ids=[1, 2], max_tokens=4),
                               lc.Prompt(token_ids=[9])])
        with self.assertRaises(lc.SpecError):
            lc.prompts_from_spec({"prompts": [{}]})


class ArchitectureTest(unittest.TestCase):
    def test_param_counts_match_published_sizes(self):
        # Published parameter counts of the checkpoints these shapes copy.
        want = {"llama-3.1-8b": 8.03e9, "llama-3.2-1b": 1.236e9, "qwen2.5-0.5b": 0.494e9,
                "smollm-135m": 0.1345e9}
        for name, n in want.items():
            with self.subTest(name=name):
                got = lc.count_params(lc.architecture(name))
                self.assertAlmostEqual(got / n, 1.0, delta=0.01)

    def test_hf_config_kwargs(self):
        arch = lc.architecture("llama-3.1-8b")
        mt, kw4 = lc.hf_config_kwargs(arch, "4.57.1")
        self.assertEqual(mt, "llama")
        self.assertEqual((kw4["rope_theta"], kw4["rope_scaling"]["rope_type"]), (500000.0, "llama3"))
        self.assertNotIn("rope_parameters", kw4)
        _, kw5 = lc.hf_config_kwargs(arch, "5.17.0")
        self.assertNotIn("rope_theta", kw5)
        self.assertNotIn("rope_scaling", kw5)
        self.assertEqual(kw5["rope_parameters"], {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                  "original_max_position_embeddings": 8192, "rope_type": "llama3",
                                                  "rope_theta": 500000.0})
        _, q5 = lc.hf_config_kwargs(lc.architecture("qwen2.5-0.5b"), "5.0.0rc1")
        self.assertEqual(q5["rope_parameters"], {"rope_type": "default", "rope_theta": 1000000.0})
        self.assertEqual(arch["model_type"], "llama")  # the table is not modified
        self.assertEqual([lc.version_tuple(v) for v in ("4.56.0", "5", "5.0.0rc1", "x")],
                         [(4, 56), (5, 0), (5, 0), (0, 0)])

    def test_unknown(self):
        with self.assertRaises(lc.SpecError) as cm:
            lc.architecture("gpt-5")
        self.assertIn("random:llama-3.1-8b", str(cm.exception))

    def test_random_model_name(self):
        self.assertEqual(lc.random_model_name("random:llama-15m"), "llama-15m")
        self.assertIsNone(lc.random_model_name("meta-llama/Llama-3.1-8B"))


class DatasetTest(unittest.TestCase):
    def cfg(self, **ds):
        d = {"source": "synthetic", "input_len": 16, "output_len": 8}
        d.update(ds)
        return {"n": 20, "random_seed": 7, "max_output_tokens": 128, "dataset": d}

    def test_synthetic_token_ids_exact_and_seeded(self):
        a = lc.synthetic_prompts(self.cfg(), vocab_size=1000)
        b = lc.synthetic_prompts(self.cfg(), vocab_size=1000)
        self.assertEqual(a, b)
        self.assertEqual(len(a), 20)
        for p in a:
            self.assertEqual(len(p.token_ids), 16)
            self.assertEqual(p.max_tokens, 8)
            self.assertTrue(all(4 <= t < 1000 for t in p.token_ids))
        c = lc.synthetic_prompts(dict(self.cfg(), random_seed=8), vocab_size=1000)
        self.assertNotEqual(a, c)

    def test_output_len_capped_by_max_output_tokens(self):
        cfg = self.cfg(output_len=300)
        self.assertTrue(all(p.max_tokens == 128 for p in lc.synthetic_prompts(cfg, vocab_size=50)))

    def test_distributions(self):
        for dist in ("uniform", "normal"):
            with self.subTest(dist=dist):
                ps = lc.synthetic_prompts(self.cfg(distribution=dist, spread=0.5, input_len=100), vocab_size=50)
                lens = [len(p.token_ids) for p in ps]
                self.assertGreater(len(set(lens)), 1)
                self.assertTrue(all(x >= 1 for x in lens))
                if dist == "uniform":
                    self.assertTrue(all(50 <= x <= 150 for x in lens))
        with self.assertRaises(lc.SpecError):
            lc.synthetic_prompts(self.cfg(distribution="zipf"), vocab_size=50)

    def test_synthetic_text_exact_length(self):
        ps = lc.synthetic_prompts(self.cfg(input_len=33), tokenizer=FakeTokenizer())
        tok = FakeTokenizer()
        for p in ps:
            self.assertEqual(len(tok.encode(p.text)), 33)

    def test_jsonl_and_orders(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "p.jsonl")
            with open(path, "w") as f:
                f.write(json.dumps({"_provenance": "x"}) + "\n\n")
                for i in range(6):
                    f.write(json.dumps({"text": " t%d " % i, "source": "ab"[i % 2], "max_tokens": i}) + "\n")
                f.write(json.dumps({"other": 1}) + "\n")
            recs = lc.jsonl_records(path)
            self.assertEqual([r.text for r in recs], ["t%d" % i for i in range(6)])
            self.assertEqual(recs[3].max_tokens, 3)
            inter = lc.order_prompts(recs, "interleaved", 42, 4)
            self.assertEqual([r.text for r in inter], ["t0", "t1", "t2", "t3"])
            grouped = lc.order_prompts(recs, "grouped", 42, 6)
            self.assertEqual([r.text for r in grouped], ["t0", "t2", "t4", "t1", "t3", "t5"])
            shuffled = lc.order_prompts(recs, "shuffled", 42, 6)
            want = list(recs)
            random.Random(42).shuffle(want)  # the original's exact order
            self.assertEqual(shuffled, want)
            with self.assertRaises(lc.DatasetError):
                lc.order_prompts(recs, "interleaved", 42, 7)
            spec = {"config": {"n": 2, "dataset": {"source": "jsonl", "path": path}}, "prompts": []}
            self.assertEqual([p.text for p in lc.build_prompts(spec)], ["t0", "t1"])

    def test_jsonl_field_and_bad_line(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "p.jsonl")
            with open(path, "w") as f:
                f.write('{"q": "x", "prompt": "y"}\n{broken\n')
            with self.assertRaises(lc.DatasetError) as cm:
                lc.jsonl_records(path, "q")
            self.assertIn(":2:", str(cm.exception))
            with self.assertRaises(lc.DatasetError):
                lc.jsonl_records(os.path.join(d, "missing.jsonl"))

    def test_build_prompts_prefers_spec_and_refuses_unresolved(self):
        spec = {"config": {"n": 5, "dataset": {"source": "synthetic"}}, "prompts": [{"text": "hi"}]}
        self.assertEqual(lc.build_prompts(spec, vocab_size=10), [lc.Prompt(text="hi")])
        spec = {"config": {"n": 5, "dataset": {"source": "aienergyscore"}}, "prompts": []}
        with self.assertRaises(lc.DatasetError):
            lc.build_prompts(spec)

    def test_forced_output(self):
        self.assertTrue(lc.forced_output(self.cfg()))
        self.assertFalse(lc.forced_output({"dataset": {"source": "jsonl"}}))

    def test_approx_token_ids(self):
        ids = lc.approx_token_ids("Hello, world! It's 2 o'clock.", 100)
        self.assertEqual(len(ids), 12)  # Hello , world ! It ' s 2 o ' clock .
        self.assertTrue(all(4 <= i < 100 for i in ids))
        self.assertEqual(ids, lc.approx_token_ids("Hello, world! It's 2 o'clock.", 100))
        self.assertEqual(len(lc.approx_token_ids("", 100)), 1)


class BatchingTest(unittest.TestCase):
    def test_fixed_and_sorted(self):
        lengths = [5, 9, 1, 9, 3]
        self.assertEqual(lc.make_batches(lengths, 2), [[0, 1], [2, 3], [4]])
        self.assertEqual(lc.make_batches(lengths, 2, "sorted"), [[1, 3], [0, 4], [2]])
        self.assertEqual(lc.make_batches([], 4), [])
        with self.assertRaises(lc.SpecError):
            lc.make_batches(lengths, 0)
        with self.assertRaises(lc.SpecError):
            lc.make_batches(lengths, 2, "random")

    def test_left_pad_and_real_tokens(self):
        ids, mask = lc.left_pad([[1, 2, 3], [4]], 0)
        self.assertEqual(ids, [[1, 2, 3], [0, 0, 4]])
        self.assertEqual(mask, [[1, 1, 1], [0, 0, 1]])
        self.assertEqual([lc.real_input_tokens(m) for m in mask], [3, 1])

    def test_generated_length(self):
        cases = [
            ([5, 6, 2, 0, 0], [2], 0, (3, "eos")),     # EOS counted, padding after it is not
            ([5, 6, 7], [2], 0, (3, "length")),
            ([2, 2, 2], [2], 0, (1, "eos")),           # pad == eos: first one ends the row
            ([2, 6, 2, 9], [2], 2, (3, "eos")),        # EOS before min_new_tokens is not an end
            ([5, 6, 7], [], 0, (3, "length")),
            ([5, 9, 7], [2, 9], 0, (2, "eos")),        # several EOS ids
        ]
        for toks, eos, min_new, want in cases:
            with self.subTest(toks=toks):
                self.assertEqual(lc.generated_length(toks, eos, min_new), want)

    def test_thermal_floor(self):
        slept = []
        cfg = {"warmup": {"enabled": True, "n_warmup": 2, "thermal_floor_seconds": 1.5}}
        self.assertEqual(lc.thermal_floor(cfg, sleep=slept.append), 1.5)
        self.assertEqual(slept, [1.5])
        # No floor without warmup, none when absent, never negative.
        for c in ({"warmup": {"enabled": False, "thermal_floor_seconds": 3}}, {}, {"warmup": {"thermal_floor_seconds": -1}}):
            self.assertEqual(lc.thermal_floor(c, sleep=slept.append), 0.0)
        self.assertEqual(slept, [1.5])

    def test_warmup_indices(self):
        self.assertEqual(lc.warmup_indices({"warmup": {"n_warmup": 5}}, 2), [0, 1, 0, 1, 0])
        self.assertEqual(lc.warmup_indices({"warmup": {"enabled": False}}, 2), [])
        self.assertEqual(lc.warmup_indices({}, 0), [])


class ErrorTest(unittest.TestCase):
    def test_classify(self):
        class OutOfMemoryError(RuntimeError):
            pass

        class GatedRepoError(OSError):
            pass

        me = ModuleNotFoundError("No module named 'vllm'", name="vllm")
        cases = [
            (me, "vllm", "missing_package", "pip install vllm"),
            (ModuleNotFoundError("No module named 'flash_attn.x'"), "pytorch", "missing_package", "flash-attn"),
            (OutOfMemoryError("CUDA out of memory. Tried to allocate"), "pytorch", "oom", "batch_size"),
            (RuntimeError("CUDA error: out of memory"), "vllm", "oom", "gpu_memory_utilization"),
            (GatedRepoError("401 Client Error. Cannot access gated repo"), "pytorch", "gated", "HF_TOKEN"),
            (OSError("foo is not a valid model identifier listed on 'https://huggingface.co/models'"),
             "pytorch", "model_not_found", "model id"),
            (lc.DatasetError("dataset has only 3"), "pytorch", "dataset", "dataset"),
            (lc.ProtocolError("protocol_version 2"), "pytorch", "protocol", ""),
            (lc.SpecError("batch_size 0"), "pytorch", "config", "llem params pytorch"),
            (lc.HarnessError("unsupported", "no beams", "use x"), "vllm", "unsupported", "use x"),
            (TypeError("__init__() got an unexpected keyword argument 'foo'"), "vllm", "config", "extra"),
            (ZeroDivisionError("x"), "pytorch", "internal", ""),
            (RuntimeError("shape mismatch: [14016, 4096]"), "pytorch", "internal", ""),  # not a 401
        ]
        for exc, backend, kind, hint in cases:
            with self.subTest(exc=exc):
                k, msg, h = lc.classify_error(exc, backend)
                self.assertEqual(k, kind)
                self.assertIn(hint, h)
                self.assertTrue(msg)
        # Every kind is one the parent knows (pkg/worker ErrorKinds).
        known = {"config", "protocol", "model_not_found", "bad_checkpoint", "unsupported", "oom",
                 "missing_package", "gated", "dataset", "interrupted", "internal"}
        for exc, backend, _, _ in cases:
            self.assertIn(lc.classify_error(exc, backend)[0], known)



class MemoryReportTest(unittest.TestCase):
    def test_report_drops_unknowns(self):
        self.assertIsNone(lc.memory_report("torch.cuda"))
        self.assertEqual(lc.memory_report("torch.cuda", 10, 20, 0, 5),
                         {"peak_allocated_bytes": 10, "peak_reserved_bytes": 20, "weights_bytes": 5, "reporter": "torch.cuda"})

    def test_done_carries_memory(self):
        out = io.StringIO()
        em = lc.Emitter(out, clock())
        em.done(1, 2, 3, memory=lc.memory_report("x", kv_cache=7))
        self.assertEqual(json.loads(out.getvalue())["memory"], {"kv_cache_bytes": 7, "reporter": "x"})

    def test_kv_bytes_per_token(self):
        # Llama-3.1-8B: 2 · 32 layers · 8 KV heads · 128 dims · 2 bytes.
        hf = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096}
        self.assertEqual(lc.kv_bytes_per_token(hf, 2), 131072)

    def test_trtllm_stats(self):
        stats = [{"kvCacheStats": {"maxNumBlocks": 10, "tokensPerBlock": 32}},
                 json.dumps({"kvCacheStats": {"maxNumBlocks": 12, "tokensPerBlock": 32}}), "not json", {}]
        self.assertEqual(lc.trtllm_kv_cache_bytes(stats, 100), 12 * 32 * 100)
        self.assertEqual(lc.trtllm_kv_cache_bytes([], 100), 0)
        self.assertEqual(lc.trtllm_kv_cache_bytes(stats, 0), 0)

    def test_vllm_kv_cache(self):
        class NS:
            def __init__(self, **kw):
                self.__dict__.update(kw)

        class Model:
            dtype = NS(itemsize=2)
            use_mla = False

            def get_num_layers(self, par):
                return 16  # per pipeline stage

            def get_num_kv_heads(self, par):
                return 4  # per tensor-parallel rank

            def get_head_size(self):
                return 128
        par = NS(tensor_parallel_size=2, pipeline_parallel_size=2)
        cache = NS(num_gpu_blocks=100, block_size=16, cache_dtype="auto")
        llm = NS(llm_engine=NS(vllm_config=NS(cache_config=cache, model_config=Model(), parallel_config=par)))
        # 100 blocks · 16 tokens · K and V · 32 layers · 8 heads · 128 · 2 bytes.
        self.assertEqual(lc.vllm_kv_cache_bytes(llm), 100 * 16 * 2 * 32 * 8 * 128 * 2)
        cache.cache_dtype = "fp8_e4m3"
        self.assertEqual(lc.vllm_kv_cache_bytes(llm), 100 * 16 * 2 * 32 * 8 * 128 * 1)
        cache.num_gpu_blocks = None
        self.assertEqual(lc.vllm_kv_cache_bytes(llm), 0)
        self.assertEqual(lc.vllm_kv_cache_bytes(NS(llm_engine=None)), 0)

if __name__ == "__main__":
    unittest.main()
