#!/usr/bin/python3
"""A torch re-run of a text-only `t2 train` run on world JSONL (facts / reasoning), to check
independently whether what t2 train fails to learn is learnable at all: the t2-tiny language model
(weights from MODEL, or --scratch), the prompts t2 train renders (Vicuna, BOS, the MC suffix half
the time), the loss on the answer tokens + end token, AdamW (0.9, 0.999, eps 1e-8, decay 0.1 on
matrices), clip 1, 100 warmup steps + cosine to 1e-4, batch 16. Every EVERY steps: the greedy first
answer token's accuracy per kind (facts: letter / inline / yesno; reasoning: mc) on DATA's valid
files. --check prints one batch's loss and the accuracies of MODEL as it is (docs/t2-tiny.md, run
33: they agree item for item with `t2 eval` on reasoning). Not a ctest; a diagnostic.

usage: train_rerun.py MODEL DATA OUT_CSV --mix reasoning=1,facts=3 [--kind letter] [--scratch]
       [--seconds S] [--steps N] [--lr 1e-3] [--device cpu|cuda] [--threads N] [--check]
DATA holds FAMILY-train.jsonl for each family of --mix, facts-valid.jsonl and reasoning-valid.jsonl
(`t2 world gen --family facts,reasoning --split train|valid --out DATA`).
"""
import argparse, json, math, os, random, subprocess, sys, time
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

MC_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
BOS, EOS = 1911, 1912


class Enc:
    def __init__(self, model, t2=None):
        self.t2 = t2
        try:
            import tokenizers
            self.tk = tokenizers.Tokenizer.from_file(os.path.join(model, 'tokenizer.json'))
        except ImportError:
            self.tk = None
        self.model = model

    def many(self, texts):
        if self.tk is not None:
            return [e.ids for e in self.tk.encode_batch(texts, add_special_tokens=False)]
        res = []
        for i in range(0, len(texts), 400):
            out = subprocess.run([self.t2, 'tokenizer', 'encode', '--model', self.model, '--no-special'] + texts[i:i + 400],
                                 capture_output=True, text=True, check=True).stdout.strip('\n').split('\n')
            res += [[int(x) for x in l.split()] for l in out]
        return res


def kind_of(item):
    q = item['question']
    if item['task'] == 'reasoning':
        return 'mc'
    if '\nA. ' in q:
        return 'letter'
    return 'inline' if ':' in q else 'yesno'


def prompt(item, rng):
    q = item['question'] + ''.join('\n%c. %s' % (65 + i, c) for i, c in enumerate(item.get('choices') or []))
    if item['metric'] == 'mc' and rng.random() < 0.5:
        q += MC_SUFFIX
    return 'USER: ' + q + ' ASSISTANT:', ' ' + item['answers'][0]


def load(path, n=None):
    out = []
    with open(path) as f:
        for l in f:
            out.append(json.loads(l))
            if n and len(out) >= n:
                break
    return out


def encode_items(enc, items, rng, fixed_suffix=None):
    ps, ans = [], []
    for it in items:
        p, a = prompt(it, rng)
        if fixed_suffix is not None and it['metric'] == 'mc':
            p = 'USER: ' + it['question'] + ''.join('\n%c. %s' % (65 + i, c) for i, c in enumerate(it['choices'])) + \
                (MC_SUFFIX if fixed_suffix else '') + ' ASSISTANT:'
        ps.append(p), ans.append(a)
    P, A = enc.many(ps), enc.many(ans)
    return [([BOS] + p, a + [EOS]) for p, a in zip(P, A)]


class LM(torch.nn.Module):
    def __init__(self, model, scratch, dev):
        super().__init__()
        cfg = json.load(open(os.path.join(model, 'config.json')))['text_config']
        self.c = cfg
        ck = st.Checkpoint(model)
        pre = 'language_model.model.'
        self.P = torch.nn.ParameterDict()
        g = torch.Generator().manual_seed(1)
        for name in ck.keys():
            if not name.startswith(pre):
                continue
            w = torch.tensor(np.asarray(ck.get(name), dtype=np.float32))
            if scratch:
                w = torch.ones_like(w) if w.ndim == 1 else torch.randn(w.shape, generator=g) * 0.02
            self.P[name[len(pre):].replace('.', '__')] = torch.nn.Parameter(w)
        self.to(dev)
        hd = cfg['head_dim']
        inv = 1.0 / (float(cfg['rope_theta']) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        self.inv = inv.float().to(dev)
        self.dev = dev

    def p(self, n):
        return self.P[n.replace('.', '__')]

    def forward(self, toks):
        c = self.c
        B, T = toks.shape
        nh, kv, hd, eps = c['num_attention_heads'], c['num_key_value_heads'], c['head_dim'], c['rms_norm_eps']
        ang = torch.arange(T, device=self.dev, dtype=torch.float32)[:, None] * self.inv[None, :]
        cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
        norm = lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
        rope = lambda x: x * cos + torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1) * sin
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=self.dev))
        h = self.p('embed_tokens.weight')[toks]
        for l in range(c['num_hidden_layers']):
            pf = 'layers.%d.' % l
            x = norm(h, self.p(pf + 'input_layernorm.weight'))
            q = (x @ self.p(pf + 'self_attn.q_proj.weight').T).view(B, T, nh, hd).transpose(1, 2)
            k = (x @ self.p(pf + 'self_attn.k_proj.weight').T).view(B, T, kv, hd).transpose(1, 2)
            v = (x @ self.p(pf + 'self_attn.v_proj.weight').T).view(B, T, kv, hd).transpose(1, 2)
            q, k = rope(q), rope(k)
            k, v = k.repeat_interleave(nh // kv, 1), v.repeat_interleave(nh // kv, 1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            o = (torch.softmax(s.masked_fill(~mask, float('-inf')), -1) @ v).transpose(1, 2).reshape(B, T, nh * hd)
            h = h + o @ self.p(pf + 'self_attn.o_proj.weight').T
            x = norm(h, self.p(pf + 'post_attention_layernorm.weight'))
            h = h + (torch.nn.functional.silu(x @ self.p(pf + 'mlp.gate_proj.weight').T) *
                     (x @ self.p(pf + 'mlp.up_proj.weight').T)) @ self.p(pf + 'mlp.down_proj.weight').T
        return norm(h, self.p('norm.weight')) @ self.p('embed_tokens.weight').T


def batchify(samples, dev, pad=1913):
    T = max(len(p) + len(a) for p, a in samples)
    toks = torch.full((len(samples), T), pad, dtype=torch.long)
    tg = torch.full((len(samples), T), -1, dtype=torch.long)
    for i, (p, a) in enumerate(samples):
        s = p + a
        toks[i, :len(s)] = torch.tensor(s)
        for t in range(len(p) - 1, len(s) - 1):
            tg[i, t] = s[t + 1]
    return toks.to(dev), tg.to(dev)


@torch.no_grad()
def first_token_acc(m, samples, dev):
    """Greedy first answer token right, per sample (prompt ends at ASSISTANT:)."""
    right = []
    for i in range(0, len(samples), 64):
        ch = samples[i:i + 64]
        T = max(len(p) for p, _ in ch)
        toks = torch.full((len(ch), T), 1913, dtype=torch.long)
        for j, (p, _) in enumerate(ch):
            toks[j, :len(p)] = torch.tensor(p)
        lg = m(toks.to(dev))
        for j, (p, a) in enumerate(ch):
            right.append(int(lg[j, len(p) - 1].argmax()) == a[0])
    return right


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model'); ap.add_argument('data'); ap.add_argument('out')
    ap.add_argument('--mix', default='reasoning=1,facts=3')
    ap.add_argument('--kind', default=None, help='facts items of this kind only (letter, inline, yesno)')
    ap.add_argument('--scratch', action='store_true')
    ap.add_argument('--seconds', type=float, default=1e9)
    ap.add_argument('--steps', type=int, default=10000)
    ap.add_argument('--every', type=int, default=500)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--ntrain', type=int, default=60000)
    ap.add_argument('--t2', default='build/t2')
    ap.add_argument('--check', action='store_true', help='print the loss of one batch and stop')
    ap.add_argument('--threads', type=int, default=0)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rng = random.Random(0)
    enc = Enc(a.model, a.t2)
    mix = [(k, float(v)) for k, v in (x.split('=') for x in a.mix.split(','))]
    pools = {}
    for fam, _ in mix:
        items = load(os.path.join(a.data, '%s-train.jsonl' % fam), a.ntrain)
        if fam == 'facts' and a.kind:
            items = [it for it in items if kind_of(it) == a.kind]
        pools[fam] = encode_items(enc, items, rng)
    valid = {}
    for fam in ('facts', 'reasoning'):
        items = load(os.path.join(a.data, '%s-valid.jsonl' % fam), 400)
        for it in items:
            valid.setdefault(kind_of(it), []).append(it)
    vs = {k: encode_items(enc, v, rng, fixed_suffix=True) for k, v in valid.items()}
    m = LM(a.model, a.scratch, a.device)
    if a.check:
        toks, tg = batchify(pools[mix[0][0]][:4], a.device)
        lg = m(toks)
        print('loss', float(torch.nn.functional.cross_entropy(lg.view(-1, lg.shape[-1]), tg.view(-1), ignore_index=-1)))
        print('toks', toks[0].tolist()); print('tg', tg[0].tolist())
        for k, v in vs.items():
            print(k, 'first-token acc', sum(first_token_acc(m, v, a.device)) / len(v), len(v))
        return
    dec = [p for n, p in m.P.items() if p.ndim >= 2]
    nodec = [p for n, p in m.P.items() if p.ndim < 2]
    opt = torch.optim.AdamW([{'params': dec, 'weight_decay': 0.1}, {'params': nodec, 'weight_decay': 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    tot = sum(w for _, w in mix)
    t0 = time.time()
    f = open(a.out, 'w')
    f.write('step,elapsed,loss,' + ','.join(sorted(vs)) + '\n')
    run_loss = []
    for step in range(1, a.steps + 1):
        lr = a.lr * step / 100 if step <= 100 else 1e-4 + 0.5 * (a.lr - 1e-4) * (1 + math.cos(math.pi * (step - 100) / (a.steps - 100)))
        for g in opt.param_groups:
            g['lr'] = lr
        batch = []
        for _ in range(16):
            u = rng.random() * tot
            for fam, w in mix:
                if u < w:
                    break
                u -= w
            batch.append(rng.choice(pools[fam]))
        toks, tg = batchify(batch, a.device)
        lg = m(toks)
        loss = torch.nn.functional.cross_entropy(lg.view(-1, lg.shape[-1]), tg.view(-1), ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        run_loss.append(float(loss))
        done = time.time() - t0 > a.seconds
        if step % a.every == 0 or done or step == a.steps:
            acc = {k: sum(first_token_acc(m, v, a.device)) / len(v) for k, v in vs.items()}
            line = '%d,%.1f,%.4f,' % (step, time.time() - t0, sum(run_loss) / len(run_loss)) + \
                   ','.join('%.3f' % acc[k] for k in sorted(vs))
            print(a.out, line, flush=True)
            f.write(line + '\n'); f.flush()
            run_loss = []
        if done:
            break


if __name__ == '__main__':
    main()
