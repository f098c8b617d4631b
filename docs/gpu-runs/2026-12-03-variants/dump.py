import os, glob, torch, torch.nn.functional as F
dev = "cuda"
x_a = torch.randn(32, 32, 44, 50, device=dev)
i = torch.randint(0, 16384, (16,), device=dev)
fns = {
    "nearest": (lambda x: F.interpolate(x, size=(176, 200), mode="nearest"), x_a),
    "linear": (lambda x: F.interpolate(x, size=(176, 200), mode="bilinear", align_corners=False), x_a),
    "onehot": (lambda i: F.one_hot(i, 16384).to(torch.float32), i),
}
for name, (f, a) in fns.items():
    c = torch.compile(f, dynamic=False)
    c(a); torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph(); s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for _ in range(3): c(a)
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        for _ in range(20): y = c(a)
    g.replay(); torch.cuda.synchronize()
    ts = []
    for _ in range(25):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); g.replay(); e1.record(); e1.synchronize(); ts.append(e0.elapsed_time(e1) * 1000 / 20)
    ts.sort(); print(f"compile {name}: {ts[12]:.2f} us", flush=True)
