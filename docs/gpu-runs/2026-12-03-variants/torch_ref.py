import sys, torch, torch.nn.functional as F
sys.path.insert(0, "scripts")
import importlib.util
spec = importlib.util.spec_from_file_location("bk", "scripts/bench-kernels.py"); bk = importlib.util.module_from_spec(spec); sys.modules["bk"] = bk; spec.loader.exec_module(bk)
torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
g = torch.Generator(device="cuda"); g.manual_seed(0)
for name, make, fn in [
    ("matmul 512^3 fp32 (cuBLAS, TF32 off)", lambda: [torch.randn(512, 512, generator=g, device="cuda") for _ in range(2)], lambda a, b: a @ b),
    ("conv 1x64x56x56, 64x64x3x3, pad 1 (cuDNN, TF32 off)", lambda: [torch.randn(1, 64, 56, 56, generator=g, device="cuda"), torch.randn(64, 64, 3, 3, generator=g, device="cuda"), torch.randn(64, generator=g, device="cuda")],
     lambda x, w, b: F.conv2d(x, w, b, padding=1)),
]:
    sets = [make() for _ in range(16)]
    outs = []
    calls = [(lambda s: (lambda: outs.append(fn(*s))))(s) for s in sets]
    print(f"torch eager {name}: {bk.time_graph(calls, reps=25, per_graph=16) * 1e6:.1f} us", flush=True)
