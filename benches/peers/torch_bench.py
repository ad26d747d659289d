"""torchdiffeq / torchsde peer (CPU, f64), only when `setup.sh --with-torch` installed them:
spiral forward (dopri5, 1 000 save points), neural SDE Euler-Maruyama (batch 20, 1 000 steps,
forward and forward + gradient), spiral training (ms / iteration)."""

import statistics
import time

import torch
import torchdiffeq
import torchsde

import common as c

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


class Spiral(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 50), torch.nn.Tanh(), torch.nn.Linear(50, 2))
        with torch.no_grad():
            self.net[0].weight.copy_(torch.tensor(w["W1"]))
            self.net[0].bias.copy_(torch.tensor(w["b1"]))
            self.net[2].weight.copy_(torch.tensor(w["W2"]))
            self.net[2].bias.copy_(torch.tensor(w["b2"]))
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return self.net(y ** 3)


class NeuralSDE(torch.nn.Module):
    """du = mlp(u) dt + (Wg u + bg) * dW, Ito, diagonal noise."""
    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, w):
        super().__init__()
        self.drift = Spiral(w)
        self.diff = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.diff.weight.copy_(torch.tensor(w["sde_diffusion"]["Wg"]))
            self.diff.bias.copy_(torch.tensor(w["sde_diffusion"]["bg"]))

    def f(self, t, y):
        return self.drift(t, y)

    def g(self, t, y):
        return self.diff(y)


def version():
    return f"torchdiffeq {torchdiffeq.__version__} / torchsde {torchsde.__version__} / torch {torch.__version__}"


def spiral_forward(args, w):
    model = Spiral(w)
    ts = torch.linspace(0.0, c.SPIRAL_T_END, c.SPIRAL_POINTS)
    y0 = torch.tensor([c.SPIRAL_Y0])

    def solve():
        model.nfe = 0
        with torch.no_grad():
            return torchdiffeq.odeint(model, y0, ts, rtol=c.SPIRAL_RTOL, atol=c.SPIRAL_ATOL, method="dopri5")

    median_ms, runs, _, ys = c.time_runs(solve, args)
    c.emit(args, tool="torchdiffeq", version=version(), method="dopri5", problem="spiral_forward",
           t_end=c.SPIRAL_T_END, rtol=c.SPIRAL_RTOL, atol=c.SPIRAL_ATOL, median_ms=median_ms,
           runs=runs, nfe=model.nfe, final=ys[-1, 0].tolist())


def sde(args, w):
    model = NeuralSDE(w)
    ts = torch.tensor([0.0, c.SDE_T_END])
    dt = c.SDE_T_END / c.SDE_STEPS
    y0 = torch.tensor([c.SPIRAL_Y0]).repeat(c.SDE_BATCH, 1)

    def forward():
        with torch.no_grad():
            return torchsde.sdeint(model, y0, ts, method="euler", dt=dt)[-1]

    def with_grad():
        model.zero_grad()
        loss = torchsde.sdeint(model, y0, ts, method="euler", dt=dt)[-1].mean()
        loss.backward()
        return loss.detach()

    torch.manual_seed(0)
    for problem, fn in [("sde_forward", forward), ("sde_grad", with_grad)]:
        median_ms, runs, _, out = c.time_runs(fn, args)
        final = out.mean(dim=0).tolist() if problem == "sde_forward" else [float(out)]
        c.emit(args, tool="torchsde", version=version(), method="euler (EM)", problem=problem,
               t_end=c.SDE_T_END, rtol=None, atol=None, median_ms=median_ms, runs=runs,
               steps=c.SDE_STEPS, batch=c.SDE_BATCH, final=final)


def train(args, w):
    A = torch.tensor(c.SPIRAL_A)
    ts = torch.linspace(0.0, c.SPIRAL_T_END, c.SPIRAL_POINTS)
    with torch.no_grad():
        true = torchdiffeq.odeint(lambda t, y: (y ** 3) @ A, torch.tensor([c.SPIRAL_Y0]), ts,
                                  rtol=c.SPIRAL_RTOL, atol=c.SPIRAL_ATOL, method="dopri5")
    model = Spiral(w)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.99, eps=1e-8)
    batch_t = ts[:10]
    torch.manual_seed(1)
    iters = 10 if args.quick else 50
    times = []
    for i in range(iters + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        s = torch.randperm(c.SPIRAL_POINTS - 10)[:20]
        y0 = true[s]  # (20, 1, 2)
        batch_y = torch.stack([true[s + i] for i in range(10)], dim=0)  # (10, 20, 1, 2)
        pred = torchdiffeq.odeint(model, y0, batch_t, rtol=c.SPIRAL_RTOL, atol=c.SPIRAL_ATOL, method="dopri5")
        loss = torch.mean(torch.abs(pred - batch_y))
        loss.backward()
        opt.step()
        if i > 0:  # iteration 0 is the warm-up
            times.append((time.perf_counter() - t0) * 1e3)
    c.emit(args, tool="torchdiffeq", version=version(), method="dopri5, RMSprop", problem="spiral_train",
           t_end=float(batch_t[-1]), rtol=c.SPIRAL_RTOL, atol=c.SPIRAL_ATOL,
           median_ms=statistics.median(times), runs=iters, final=[loss.item()])


def main():
    args = c.parse_args(__doc__)
    w = c.load_weights()
    if c.wants(args, "spiral"):
        spiral_forward(args, w)
    if c.wants(args, "sde"):
        sde(args, w)
    if c.wants(args, "train"):
        train(args, w)


if __name__ == "__main__":
    main()
