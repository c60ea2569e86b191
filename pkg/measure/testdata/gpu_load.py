"""GPU load for llem's validation (scripts/gpu-validate.sh).

Runs bf16 matmuls on cuda:0 and reads the NVML energy counter itself
(nvidia-ml-py) at the start and end of each window, after
torch.cuda.synchronize(). Each window is announced to llem on stdout as
LLEM_WINDOW {...} with CLOCK_MONOTONIC timestamps, so llem measures the very
same span and compares with this independent in-process reading.
"""
import json
import os
import time

import pynvml
import torch

pynvml.nvmlInit()
# cuda:0 is the first CUDA_VISIBLE_DEVICES entry; map it to NVML by UUID.
props_uuid = None
try:
    props_uuid = "GPU-" + str(torch.cuda.get_device_properties(0).uuid)
except Exception:
    pass
handle = None
if props_uuid:
    try:
        handle = pynvml.nvmlDeviceGetHandleByUUID(props_uuid)
    except Exception:
        handle = None
if handle is None:
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)


def counter_mj():
    return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)


steady_s = float(os.environ.get("LOAD_SECONDS", "60"))
n = int(os.environ.get("MATMUL_N", "8192"))
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn_like(a)
c = torch.empty_like(a)
for _ in range(20):
    torch.mm(a, b, out=c)
torch.cuda.synchronize()


def window(name, fn):
    torch.cuda.synchronize()
    print("LLEM_MARK", flush=True)  # llem reads the counter now
    t0 = time.monotonic_ns()
    e0 = counter_mj()
    fn()
    torch.cuda.synchronize()
    e1 = counter_mj()
    t1 = time.monotonic_ns()
    print("LLEM_WINDOW " + json.dumps({"name": name, "start_ns": t0, "end_ns": t1,
                                        "reference_j": (e1 - e0) / 1000.0}), flush=True)


def steady(seconds):
    def run():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(10):
                torch.mm(a, b, out=c)
            torch.cuda.synchronize()
    return run


def bursty(seconds):
    def run():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(30):
                torch.mm(a, b, out=c)
            torch.cuda.synchronize()
            time.sleep(0.15)
    return run


time.sleep(2)
window("idle", lambda: time.sleep(10))
window("steady", steady(steady_s))
window("bursty", bursty(20))
window("short", steady(1.2))
time.sleep(1)
