"""LSTM and GRU: the batch shared out between threads (:mod:`._parallel`), each share of
sequences running its whole time loop in one compiled call, like the Elman layer's kernels
(:mod:`._recurrence`, whose module docstring explains the layout).

Per share: the input projection of all its steps is one product written straight into the gate
array; per step, one product with the recurrent weights (``np.dot`` into a preallocated block),
then one fused pass over the share's rows that adds projection, bias and recurrent product,
applies every gate's activation, updates cell and state, and stores what the backward pass
needs. Backward, per step (last first), one fused pass turns the state's gradient into the
gates' gradients, written only to a contiguous block, then one product carries it to the previous
step and a plain loop keeps the block for the weight gradients (with those stores, or the bias
sums, inside the fused pass, the backward pass took 15-20 % longer). After the loop, the bias
gradients are column sums and the weight gradients a few products over all the share's steps at
once (``dWh`` pairing each state with the next step's gradient by a one-row offset, step 0's
gradient zeroed, as in :mod:`._recurrence`); the shares' parts are added at the end.

GRU with ``reset_after=False`` (the reset gate applied before the new gate's recurrent product)
needs that product to wait for the reset gate: two products per step, forward and backward.

float32 computes tanh by the rational approximation of :mod:`._recurrence` and the sigmoid as
``0.5 + 0.5 * tanh(x / 2)``, both vectorisable; float64 uses the C library's tanh and the exact,
exp-based sigmoid.
"""

from __future__ import annotations

import numba
import numpy as np

from ._activations import _sigmoid
from ._jit import inline, jit
from ._parallel import kernel, run, shares, span
from ._recurrence import _column_sums, _store_step, _tanh32, _zero
from ._workspace import workspaces


@inline
def _sig(v, fast, like):
    t = like.dtype.type
    if fast:
        return t(0.5) + t(0.5) * _tanh32(t(0.5) * v, like)
    return _sigmoid(v, t(1))


@inline
def _th(v, fast, like):
    if fast:
        return _tanh32(v, like)
    return np.tanh(v)


@jit()
def _zero_first_steps(das, lo, hi):
    """Zero step 0's gradient of sequences ``lo..hi-1``, so that pairing the flat states with the
    next row's gradient adds nothing across two sequences."""
    zero = das.dtype.type(0)
    for r in range(lo, hi):
        g = das[r, 0]
        for j in range(g.shape[0]):
            g[j] = zero


@inline
def _project(x, wx, out, lo, hi):
    """``out[lo:hi] = x[lo:hi] @ wx`` for every step at once, on the flat (N*T, .) views."""
    n, steps, f = x.shape
    width = out.shape[2]
    np.dot(x.reshape(n * steps, f)[lo * steps: hi * steps], wx, out.reshape(n * steps, width)[lo * steps: hi * steps])


@inline
def _input_gradients(x, wx, das, dx, need_dx, dwx, lo, hi):
    """A share's ``dwx = X^T dA`` and, if ``need_dx``, its rows of ``dx = dA Wx^T``."""
    n, steps, f = x.shape
    flat = das.reshape(n * steps, das.shape[2])[lo * steps: hi * steps]
    np.dot(x.reshape(n * steps, f)[lo * steps: hi * steps].T, flat, dwx)
    if need_dx:
        np.dot(flat, wx.T, dx.reshape(n * steps, f)[lo * steps: hi * steps])


@inline
def _state_gradients(hs, das, dwh, lo, hi):
    """A share's ``dwh = sum over t of H[t-1]^T dA[t]``, step 0's gradient zeroed first (see
    :func:`_zero_first_steps`; ``das`` is no longer needed otherwise)."""
    n, steps, width = hs.shape
    if steps > 1 and hi > lo:
        _zero_first_steps(das, lo, hi)
        np.dot(hs.reshape(n * steps, width)[lo * steps: hi * steps][:-1].T,
               das.reshape(n * steps, das.shape[2])[lo * steps + 1: hi * steps], dwh)
    else:
        _zero(dwh)


# ---- LSTM ----------------------------------------------------------------------------------------


def _lstm_kernels(fast: bool):
    """The LSTM's forward and backward kernels; ``fast`` (float32's activations) is a constant
    of their compiled code."""

    @kernel
    def forward(x, wx, wh, b, hs, gates, cells, tcells, state, cell, rec, parts):
        """``gates`` (N, T, 4H) gets the activated i, f, g, o; ``cells`` and ``tcells`` c and
        tanh(c); ``state``, ``cell`` (parts, >= m, H) and ``rec`` (parts, >= m, 4H) are scratch."""
        n, steps = x.shape[0], x.shape[1]
        width = wh.shape[0]
        bi, bf, bg, bo = b[:width], b[width: 2 * width], b[2 * width: 3 * width], b[3 * width:]
        for k in numba.prange(parts):
            share = np.int64(k)
            lo, hi = span(share, n, parts)
            m = hi - lo
            _project(x, wx, gates, lo, hi)
            h, c, r = state[share][:m], cell[share][:m], rec[share][:m]
            _zero(h)
            _zero(c)
            _zero(r)
            for t in range(steps):
                if t:
                    np.dot(h, wh, r)
                for i in range(m):
                    a, rr = gates[lo + i, t], r[i]
                    ai, af, ag, ao = a[:width], a[width: 2 * width], a[2 * width: 3 * width], a[3 * width:]
                    ri, rf, rg, ro = rr[:width], rr[width: 2 * width], rr[2 * width: 3 * width], rr[3 * width:]
                    hrow, crow, hsrow, cs, tcs = h[i], c[i], hs[lo + i, t], cells[lo + i, t], tcells[lo + i, t]
                    for j in range(width):
                        ig = _sig(ai[j] + bi[j] + ri[j], fast, hs)
                        fg = _sig(af[j] + bf[j] + rf[j], fast, hs)
                        gg = _th(ag[j] + bg[j] + rg[j], fast, hs)
                        og = _sig(ao[j] + bo[j] + ro[j], fast, hs)
                        cj = fg * crow[j] + ig * gg
                        tc = _th(cj, fast, hs)
                        hj = og * tc
                        ai[j], af[j], ag[j], ao[j] = ig, fg, gg, og
                        crow[j], cs[j], tcs[j] = cj, cj, tc
                        hrow[j], hsrow[j] = hj, hj

    @kernel
    def backward(dhs, x, wx, wht, hs, gates, cells, tcells, zeros, das, dx, need_dx, cur, carry, dcell,
                 dwx, dwh, db, parts):
        """BPTT: per step ``carry = dA[t+1] @ Wh^T`` and one fused pass into the contiguous
        ``cur``, then copied into ``das`` (N, T, 4H); after the loop the share's bias and weight
        gradients. ``zeros`` is a zero (H,) row: the cell before step 0."""
        n, steps = x.shape[0], x.shape[1]
        width = wht.shape[1]
        one = hs.dtype.type(1)
        for k in numba.prange(parts):
            share = np.int64(k)
            lo, hi = span(share, n, parts)
            m = hi - lo
            da, cr, dc = cur[share][:m], carry[share][:m], dcell[share][:m]
            _zero(cr)
            _zero(dc)
            for t in range(steps - 1, -1, -1):
                if t < steps - 1:
                    np.dot(da, wht, cr)
                for i in range(m):
                    a, out = gates[lo + i, t], da[i]
                    gi, gf, gg, go = a[:width], a[width: 2 * width], a[2 * width: 3 * width], a[3 * width:]
                    oi, of, og, oo = out[:width], out[width: 2 * width], out[2 * width: 3 * width], out[3 * width:]
                    prev = cells[lo + i, t - 1] if t else zeros
                    g_in, c_in, dcr, tcs = dhs[lo + i, t], cr[i], dc[i], tcells[lo + i, t]
                    for j in range(width):
                        dh = g_in[j] + c_in[j]
                        i_, f_, g_, o_, tc = gi[j], gf[j], gg[j], go[j], tcs[j]
                        dcj = dcr[j] + dh * o_ * (one - tc * tc)
                        dcr[j] = dcj * f_
                        oi[j] = dcj * g_ * i_ * (one - i_)
                        of[j] = dcj * prev[j] * f_ * (one - f_)
                        og[j] = dcj * i_ * (one - g_ * g_)
                        oo[j] = dh * tc * o_ * (one - o_)
                _store_step(das, da, lo, t, np.int64(0))
            _column_sums(das, lo, hi, db[share])
            _input_gradients(x, wx, das, dx, need_dx, dwx[share], lo, hi)
            _state_gradients(hs, das, dwh[share], lo, hi)

    return forward, backward


#: (forward, backward) LSTM kernels by ``fast`` (float32).
LSTM = {fast: _lstm_kernels(fast) for fast in (True, False)}


def _check(name, x, wx, wh, biases, gates):
    """``(n, steps, f, h)``; refuses mismatched shapes (the compiled loops do not check indices
    and must not raise) and mixed dtypes (each kernel is compiled for one)."""
    if x.ndim != 3 or wx.ndim != 2 or wh.ndim != 2:
        raise ValueError(f"{name} needs x (N, T, F), wx (F, {gates}H), wh (H, {gates}H); got {x.shape}, {wx.shape}, {wh.shape}")
    n, steps, f = x.shape
    h = wh.shape[0]
    want = [(f, gates * h), (h, gates * h)] + [(gates * h,)] * len(biases)
    got = [wx.shape, wh.shape] + [b.shape for b in biases]
    if got != want:
        raise ValueError(f"{name} with {f} features and {h} units needs shapes {want}; got {got}")
    if any(a.dtype != x.dtype for a in (wx, wh, *biases)):
        raise ValueError(f"{name} needs every array in one dtype; got x {x.dtype}, weights "
                         f"{sorted({str(a.dtype) for a in (wx, wh, *biases)})}")
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} runs on float32 or float64, not {x.dtype}")
    return n, steps, f, h


def _contiguous(*arrays):
    return [np.ascontiguousarray(a) for a in arrays]


def _check_backward(name, dhs, hs, n, steps, h):
    if hs.shape != (n, steps, h) or dhs.shape != hs.shape or dhs.dtype != hs.dtype:
        raise ValueError(f"{name} backward needs hs and dhs of shape {(n, steps, h)} in one dtype; got "
                         f"{hs.shape} {hs.dtype} and {dhs.shape} {dhs.dtype}")


def lstm_forward(x, wx, wh, b):
    """The LSTM over the whole sequence, the batch shared out; ``ctx`` is the activated gates,
    the cells and their tanh."""
    x, wx, wh, b = _contiguous(x, wx, wh, b)
    n, steps, f, h = _check("lstm", x, wx, wh, [b], 4)
    hs = np.empty((n, steps, h), x.dtype)
    gates = np.empty((n, steps, 4 * h), x.dtype)
    cells, tcells = np.empty_like(hs), np.empty_like(hs)
    parts = shares(n, steps * 4 * h * (f + h))
    state, cell, rec = workspaces("lstm_forward", ((parts, n, h), (parts, n, h), (parts, n, 4 * h)), x.dtype)
    run(LSTM[x.dtype == np.float32][0], parts, x, wx, wh, b, hs, gates, cells, tcells, state, cell, rec)
    return hs, (gates, cells, tcells)


def lstm_backward(dhs, x, wx, wh, hs, ctx, dwx, dwh, db, need_dx):
    """BPTT, the batch shared out; overwrites ``dwx``, ``dwh``, ``db`` with the shares' sums."""
    x, wx, hs, dhs = _contiguous(x, wx, hs, dhs)
    n, steps, f, h = _check("lstm", x, wx, wh, [], 4)
    _check_backward("lstm", dhs, hs, n, steps, h)
    gates, cells, tcells = ctx
    wht = np.ascontiguousarray(wh.T)
    dx = np.empty(x.shape, x.dtype) if need_dx else x  # x stands in for dx's type, never written
    parts = shares(n, steps * 4 * h * (2 * f + 2 * h))
    das, cur, carry, dcell, *grads = workspaces(
        "lstm_backward", ((n, steps, 4 * h), (parts, n, 4 * h), (parts, n, h), (parts, n, h),
                          (parts, f, 4 * h), (parts, h, 4 * h), (parts, 4 * h)), x.dtype)
    run(LSTM[x.dtype == np.float32][1], parts, dhs, x, wx, wht, hs, gates, cells, tcells, np.zeros(h, x.dtype),
        das, dx, bool(need_dx), cur, carry, dcell, *grads)
    for out, share in zip((dwx, dwh, db), grads):
        np.add.reduce(share, axis=0, out=out)
    return dx if need_dx else None


# ---- GRU -----------------------------------------------------------------------------------------


def _gru_kernels(fast: bool, reset_after: bool):
    """The GRU's forward and backward kernels; ``fast`` (float32's activations) and
    ``reset_after`` are constants of their compiled code."""

    @kernel
    def forward(x, wx, whrz, whn, bx, bh, hs, gates, ahn, state, rec, reset, recn, parts):
        """``gates`` (N, T, 3H) gets the activated r, z, n; ``ahn`` (N, T, H) the new gate's
        recurrent input: ``h[t-1] @ Wh_n + bh_n`` with ``reset_after``, else the reset state
        ``r * h[t-1]``. ``whrz`` is all of ``Wh`` with ``reset_after``, else its r and z columns
        (``whn`` the n columns, ``reset`` and ``recn`` (parts, >= m, H) scratch); ``state`` and
        ``rec`` (parts, >= m, H or its width) are scratch."""
        n, steps = x.shape[0], x.shape[1]
        width = hs.shape[2]
        one = hs.dtype.type(1)
        bxr, bxz, bxn = bx[:width], bx[width: 2 * width], bx[2 * width:]
        bhr, bhz, bhn = bh[:width], bh[width: 2 * width], bh[2 * width:]
        for k in numba.prange(parts):
            share = np.int64(k)
            lo, hi = span(share, n, parts)
            m = hi - lo
            _project(x, wx, gates, lo, hi)
            h, r = state[share][:m], rec[share][:m]
            _zero(h)
            _zero(r)
            for t in range(steps):
                if t:
                    np.dot(h, whrz, r)
                if reset_after:
                    for i in range(m):
                        a, rr, hrow, hsrow, an_ = gates[lo + i, t], r[i], h[i], hs[lo + i, t], ahn[lo + i, t]
                        ar, az, ag = a[:width], a[width: 2 * width], a[2 * width:]
                        rr_, rz, rn = rr[:width], rr[width: 2 * width], rr[2 * width:]
                        for j in range(width):
                            rg = _sig(ar[j] + bxr[j] + rr_[j] + bhr[j], fast, hs)
                            zg = _sig(az[j] + bxz[j] + rz[j] + bhz[j], fast, hs)
                            hn = rn[j] + bhn[j]
                            ng = _th(ag[j] + bxn[j] + rg * hn, fast, hs)
                            hj = (one - zg) * ng + zg * hrow[j]
                            ar[j], az[j], ag[j], an_[j] = rg, zg, ng, hn
                            hrow[j], hsrow[j] = hj, hj
                else:
                    rs, rn = reset[share][:m], recn[share][:m]
                    for i in range(m):
                        a, rr, hrow, rsrow, an_ = gates[lo + i, t], r[i], h[i], rs[i], ahn[lo + i, t]
                        ar, az = a[:width], a[width: 2 * width]
                        rr_, rz = rr[:width], rr[width:]
                        for j in range(width):
                            rg = _sig(ar[j] + bxr[j] + rr_[j] + bhr[j], fast, hs)
                            ar[j] = rg
                            az[j] = _sig(az[j] + bxz[j] + rz[j] + bhz[j], fast, hs)
                            v = rg * hrow[j]
                            rsrow[j], an_[j] = v, v
                    np.dot(rs, whn, rn)
                    for i in range(m):
                        a, rnrow, hrow, hsrow = gates[lo + i, t], rn[i], h[i], hs[lo + i, t]
                        az, ag = a[width: 2 * width], a[2 * width:]
                        for j in range(width):
                            ng = _th(ag[j] + bxn[j] + rnrow[j] + bhn[j], fast, hs)
                            zg = az[j]
                            hj = (one - zg) * ng + zg * hrow[j]
                            ag[j] = ng
                            hrow[j], hsrow[j] = hj, hj

    @kernel
    def backward(dhs, x, wx, whrzt, whnt, hs, gates, ahn, zeros, dax, dah, dx, need_dx, cur, carry, direct,
                 dnew, dreset, dwx, dwh, dwhn, dbx, dbh, parts):
        """BPTT: per step ``carry = dAh[t+1] @ Wh^T`` (r and z columns only without
        ``reset_after``) and a fused pass; ``direct`` carries ``dh * z``, the state's gradient
        through the update gate. ``dax`` (N, T, 3H) is the gradient of the input projection,
        ``dah`` (N, T, 3H, ``reset_after`` only) that of the recurrent one; without
        ``reset_after`` they are equal. ``dnew`` (parts, >= m, H) holds the new gate's gradient
        (``dax``'s n columns), and without ``reset_after`` ``dreset`` its product with ``Wh_n^T``
        and ``dwhn`` the products of the reset states, whose n columns are ``dWh_n``. The bias
        gradients are column sums after the loop."""
        n, steps = x.shape[0], x.shape[1]
        width = hs.shape[2]
        one = hs.dtype.type(1)
        for k in numba.prange(parts):
            share = np.int64(k)
            lo, hi = span(share, n, parts)
            m = hi - lo
            da, cr, dd, dn_ = cur[share][:m], carry[share][:m], direct[share][:m], dnew[share][:m]
            _zero(cr)
            _zero(dd)
            for t in range(steps - 1, -1, -1):
                if t < steps - 1:
                    np.dot(da, whrzt, cr)
                if reset_after:
                    for i in range(m):
                        a, an_, out, nrow = gates[lo + i, t], ahn[lo + i, t], da[i], dn_[i]
                        gr, gz, gn = a[:width], a[width: 2 * width], a[2 * width:]
                        orr, oz, on = out[:width], out[width: 2 * width], out[2 * width:]
                        prev = hs[lo + i, t - 1] if t else zeros
                        g_in, c_in, d_in = dhs[lo + i, t], cr[i], dd[i]
                        for j in range(width):
                            dh = g_in[j] + c_in[j] + d_in[j]
                            r_, z_, n_ = gr[j], gz[j], gn[j]
                            dn = dh * (one - z_) * (one - n_ * n_)
                            d_in[j] = dh * z_
                            orr[j] = dn * an_[j] * r_ * (one - r_)
                            oz[j] = dh * (prev[j] - n_) * z_ * (one - z_)
                            on[j] = dn * r_
                            nrow[j] = dn
                    _store_step(dah, da, lo, t, np.int64(0))
                    _store_step(dax, da, lo, t, np.int64(0))
                else:
                    drs = dreset[share][:m]
                    for i in range(m):
                        a, nrow = gates[lo + i, t], dn_[i]
                        gz, gn = a[width: 2 * width], a[2 * width:]
                        oz = da[i][width:]
                        prev = hs[lo + i, t - 1] if t else zeros
                        g_in, c_in, d_in = dhs[lo + i, t], cr[i], dd[i]
                        for j in range(width):
                            dh = g_in[j] + c_in[j] + d_in[j]
                            z_, n_ = gz[j], gn[j]
                            d_in[j] = dh * z_
                            oz[j] = dh * (prev[j] - n_) * z_ * (one - z_)
                            nrow[j] = dh * (one - z_) * (one - n_ * n_)
                    np.dot(dn_, whnt, drs)
                    for i in range(m):
                        gr, orr = gates[lo + i, t][:width], da[i][:width]
                        prev = hs[lo + i, t - 1] if t else zeros
                        srow, d_in = drs[i], dd[i]
                        for j in range(width):
                            r_ = gr[j]
                            orr[j] = srow[j] * prev[j] * r_ * (one - r_)
                            d_in[j] += srow[j] * r_
                    _store_step(dax, da, lo, t, np.int64(0))
                _store_step(dax, dn_, lo, t, 2 * width)
            _column_sums(dax, lo, hi, dbx[share])
            _column_sums(dah if reset_after else dax, lo, hi, dbh[share])
            _input_gradients(x, wx, dax, dx, need_dx, dwx[share], lo, hi)
            if reset_after:
                _state_gradients(hs, dah, dwh[share], lo, hi)
            else:
                # dax is the recurrent products' gradient too: its r and z columns pair with the
                # previous states (dwh), its n columns with the reset states of the same step
                # (dwhn; step 0's reset state is zero, so zeroing its gradient changes nothing).
                _state_gradients(hs, dax, dwh[share], lo, hi)
                np.dot(ahn.reshape(n * steps, width)[lo * steps: hi * steps].T,
                       dax.reshape(n * steps, 3 * width)[lo * steps: hi * steps], dwhn[share])

    return forward, backward


#: (forward, backward) GRU kernels by ``(fast, reset_after)``.
GRU = {(fast, after): _gru_kernels(fast, after) for fast in (True, False) for after in (True, False)}


def gru_forward(x, wx, wh, bx, bh, reset_after):
    """The GRU over the whole sequence, the batch shared out; ``ctx`` is the activated gates and
    the new gate's recurrent inputs."""
    x, wx, wh, bx, bh = _contiguous(x, wx, wh, bx, bh)
    n, steps, f, h = _check("gru", x, wx, wh, [bx, bh], 3)
    after = bool(reset_after)
    hs = np.empty((n, steps, h), x.dtype)
    gates = np.empty((n, steps, 3 * h), x.dtype)
    ahn = np.empty_like(hs)
    whrz, whn = (wh, wh) if after else _contiguous(wh[:, : 2 * h], wh[:, 2 * h:])
    parts = shares(n, steps * 3 * h * (f + h))
    rec_width = 3 * h if after else 2 * h
    state, rec, reset, recn = workspaces(
        "gru_forward", ((parts, n, h), (parts, n, rec_width), (parts, n, h), (parts, n, h)), x.dtype)
    run(GRU[x.dtype == np.float32, after][0], parts, x, wx, whrz, whn, bx, bh, hs, gates, ahn, state, rec, reset, recn)
    return hs, (gates, ahn)


def gru_backward(dhs, x, wx, wh, bx, bh, reset_after, hs, ctx, dwx, dwh, dbx, dbh, need_dx):
    """BPTT, the batch shared out; overwrites ``dwx``, ``dwh``, ``dbx``, ``dbh`` with the shares' sums."""
    x, wx, hs, dhs = _contiguous(x, wx, hs, dhs)
    n, steps, f, h = _check("gru", x, wx, wh, [], 3)
    _check_backward("gru", dhs, hs, n, steps, h)
    gates, ahn = ctx
    after = bool(reset_after)
    if after:
        whrzt = whnt = np.ascontiguousarray(wh.T)
    else:
        whrzt, whnt = _contiguous(wh[:, : 2 * h].T, wh[:, 2 * h:].T)
    dx = np.empty(x.shape, x.dtype) if need_dx else x  # x stands in for dx's type, never written
    parts = shares(n, steps * 3 * h * (2 * f + 2 * h))
    cur_width = 3 * h if after else 2 * h
    dah_shape = (n, steps, 3 * h) if after else (1, 1, 3 * h)
    dwhn_shape = (1, 1, 1) if after else (parts, h, 3 * h)
    dax, dah, cur, carry, direct, dnew, dreset, gx, gh, ghn, gbx, gbh = workspaces(
        "gru_backward", ((n, steps, 3 * h), dah_shape, (parts, n, cur_width), (parts, n, h), (parts, n, h),
                         (parts, n, h), (parts, n, h), (parts, f, 3 * h), (parts, h, 3 * h), dwhn_shape,
                         (parts, 3 * h), (parts, 3 * h)), x.dtype)
    run(GRU[x.dtype == np.float32, after][1], parts, dhs, x, wx, whrzt, whnt, hs, gates, ahn, np.zeros(h, x.dtype),
        dax, dah, dx, bool(need_dx), cur, carry, direct, dnew, dreset, gx, gh, ghn, gbx, gbh)
    for out, share in zip((dwx, dbx, dbh), (gx, gbx, gbh)):
        np.add.reduce(share, axis=0, out=out)
    if after:
        np.add.reduce(gh, axis=0, out=dwh)
    else:
        dwh[:, : 2 * h] = np.add.reduce(gh[:, :, : 2 * h], axis=0)
        dwh[:, 2 * h:] = np.add.reduce(ghn[:, :, 2 * h:], axis=0)
    return dx if need_dx else None
