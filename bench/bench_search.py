"""Search speed: embedding throughput next to the CPU ceiling, index build time and query latency at scale.

    python bench/bench_search.py --embed-n 512 --scale 100000 --queries 100 --out bench/results/search.json

What is measured, and how:
- fp32 matmul FLOP/s (torch, same threads as the embedder) in this run;
- MiniLM-L6 FLOPs per token = 2 x non-embedding parameters + attention (4 x layers x seq x hidden), and tokens per
  record from the real tokenizer, give the ceiling records/s = FLOP/s / (FLOPs per token x tokens per record);
- int8 GEMM ops/s (ONNX Runtime's MatMulInteger, same threads) in this run: the int8 runtime's own ceiling;
- embedding throughput on real catalog documents (--embed-n records, batch 64, as `index build` does), for each
  runtime in --runtimes (ONNX Runtime on the int8 quantization of the fused export, the default; ONNX Runtime on the
  fp32 export; sentence-transformers on torch), the same documents in the same run, with each one's share of the fp32
  ceiling (and the int8 runtime's of its own), their ratio and the lowest cosine between their vectors; the scale
  index then uses the first runtime listed;
- a --scale product index synthesised from the real catalog (title variants: sizes, colours, bundles, model suffixes):
  its documents are distinct for BM25, but its vectors are the real vectors of the base product (the --embed-n
  products embedded for the throughput figure) plus small noise,
  because embedding 100,000 records on 2 shared cores takes hours. Build time at scale is reported as measured Chroma
  insert + BM25 index time plus embedding time extrapolated from the measured throughput (and labelled so);
  --embed-all embeds every scale record's own document instead and reports the measured build time next to the
  estimate (their ratio checks the extrapolation);
- query latency p50/p95 (query embedding + Chroma + BM25 + fusion) with and without filters.

    python bench/bench_search.py --query-threads 1,2 --rounds 20

--query-threads measures only the embedding of one short query, per torch thread count and through `embed_query`
(what search calls: a worker thread with index.embeddings.QUERY_THREADS), in alternating rounds so a change in the
machine's load hits every setting alike: alone, and beside a thread doing fp32 matmuls on all cores (the in-process
LLM's situation), whose GFLOP/s during each query is reported too.

    python bench/bench_search.py --embed-n 64 --scale 20000 --queries 0 --filter-shapes

--filter-shapes times Chroma's filtered vector query on the scale index for each way of writing the filter (see
filter_shapes); --queries 0 skips the latency table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def matmul_flops(threads: int, n: int = 1024, seconds: float = 3.0) -> float:
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n, dtype=torch.float32)
    b = torch.randn(n, n, dtype=torch.float32)
    for _ in range(3):
        a @ b
    reps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start)


def matmul_int8_ops(threads: int, n: int = 1024, seconds: float = 3.0) -> float:
    """int8 GEMM rate (ops/s, 2 per multiply-add) of ONNX Runtime's integer matmul (MatMulInteger, uint8 x int8 ->
    int32: the MLAS kernel the quantized encoder's MatMuls run on), with `threads` threads.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "B")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "gemm_int8",
                              [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    a = rng.integers(0, 256, (n, n), dtype=np.uint8)
    for _ in range(3):
        session.run(None, {"A": a})
    reps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {"A": a})
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start)


def model_flops_per_token(model, seq: int) -> dict:
    cfg = model[0].auto_model.config
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    non_emb = total - emb
    attention = 4 * cfg.num_hidden_layers * seq * cfg.hidden_size  # QK^T and AV, 2 FLOPs per MAC
    return {
        "parameters": total,
        "non_embedding_parameters": non_emb,
        "flops_per_token_dense": 2 * non_emb,
        "flops_per_token_attention": attention,
        "flops_per_token": 2 * non_emb + attention,
        "flops_per_token_brief_formula": 2 * 22_000_000 + attention,
    }


def catalog_records():
    from shopdesk.datasets import electronics_catalog
    from store.importers.catalog import parse_catalog

    data = parse_catalog(electronics_catalog(), skip_bad=True)
    prices: dict[str, list[float]] = {}
    for v in data.variants:
        prices.setdefault(v["product_id"], []).append(float(v["price"]))
    out = []
    for p in data.products:
        ps = prices[p["id"]]
        doc = "\n".join(x for x in (p["name"], f"Brand: {p['brand']}", f"Category: {p['category']}",
                                    p.get("description") or "", f"Price: ${min(ps):.2f}") if x)
        out.append({"id": p["id"], "title": p["name"], "category": p["category"], "price": min(ps),
                    "rating": p["rating"] or -1.0, "doc": doc})
    return out


SIZES = ["", "Compact", "XL", "Mini", "Plus", "Pro", "Max", "Lite", "Ultra", "SE"]
COLORS = ["Black", "White", "Silver", "Blue", "Red", "Graphite", "Green", "Gold"]
BUNDLES = ["", "with Case", "Bundle", "2-pack", "with Warranty", "Refurbished", "Open Box"]


def synthesise(base: list[dict], n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        b = base[i % len(base)]
        if i < len(base):
            out.append({**b, "id": f"s{i}", "base": i})
            continue
        extra = " ".join(x for x in (rng.choice(SIZES), rng.choice(COLORS), rng.choice(BUNDLES),
                                     f"Model {rng.randint(100, 9999)}{rng.choice('ABCDXZ')}") if x)
        price = round(b["price"] * rng.uniform(0.7, 1.4), 2)
        out.append({**b, "id": f"s{i}", "base": i % len(base), "title": f"{b['title']} {extra}", "price": price,
                    "doc": b["doc"].replace(b["title"], f"{b['title']} {extra}", 1),
                    "rating": round(min(5.0, max(1.0, (b["rating"] if b["rating"] > 0 else 4.0)
                                                   + rng.uniform(-0.5, 0.5))), 1),
                    "in_stock": rng.random() > 0.1})
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


QUERIES = ["quiet soundbar under $300", "RTX 4070 gaming laptop", "wireless earbuds for running", "Sonos Arc",
           "camera to film my kids", "tv for a bright living room", "4k projector", "battery life",
           "laptop for college", "noise cancelling headphones"]


def query_threads_bench(thread_counts: list[int], rounds: int) -> dict:
    """Wall and CPU milliseconds to embed one short query, per torch thread count, alone and beside matmul work."""
    import threading

    import torch

    from index.embeddings import LocalEmbeddingFunction
    from shopdesk.models import resolve_embedding_model
    from shopdesk.settings import Settings

    ef = LocalEmbeddingFunction(resolve_embedding_model(Settings()))
    ef(["warm up"])
    ef.embed_query(["warm up"])
    cores = os.cpu_count()
    out: dict = {}
    for background in (False, True):
        stop = threading.Event()
        done = [0]

        def churn(stop=stop, done=done):
            # another torch user in the process (the in-process LLM): sets its own thread count, like LocalChatModel
            torch.set_num_threads(cores)
            a, b = torch.randn(256, 256), torch.randn(256, 256)
            while not stop.is_set():
                a @ b
                done[0] += 1

        worker = threading.Thread(target=churn, daemon=True) if background else None
        if worker:
            worker.start()
            time.sleep(1.0)
        variants = [f"threads_{t}" for t in thread_counts] + ["embed_query"]
        wall: dict[str, list[float]] = {v: [] for v in variants}
        cpu: dict[str, list[float]] = {v: [] for v in variants}
        matmuls: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(rounds):
            for v in (variants if r % 2 == 0 else variants[::-1]):
                # threads_N: this thread's torch count set to N; embed_query: what search does (its worker thread)
                torch.set_num_threads(int(v.split("_")[1]) if v.startswith("threads_") else cores)
                embed = ef.embed_query if v == "embed_query" else ef
                for q in QUERIES:
                    before, start, cpu_start = done[0], time.perf_counter(), time.process_time()
                    embed([q])
                    spent = time.perf_counter() - start
                    wall[v].append(spent * 1000)
                    cpu[v].append((time.process_time() - cpu_start) * 1000)
                    if worker:
                        matmuls[v].append((done[0] - before) * 2 * 256**3 / spent / 1e9)
        stop.set()
        if worker:
            worker.join()
        label = "beside_matmul_thread" if background else "alone"
        out[label] = {
            v: {"p50_ms": round(pct(wall[v], 0.5), 1), "p95_ms": round(pct(wall[v], 0.95), 1),
                "mean_ms": round(statistics.mean(wall[v]), 1), "cpu_p50_ms": round(pct(cpu[v], 0.5), 1),
                "n": len(wall[v]),
                **({"background_gflops_mean": round(statistics.mean(matmuls[v]), 2)} if worker else {})}
            for v in variants
        }
        print(f"{label}: {json.dumps(out[label])}", file=sys.stderr)
    torch.set_num_threads(cores)
    return out


def filter_shapes(index, col, ef, rounds: int) -> dict:
    """Chroma query time (query vectors precomputed) for a filter written as different `where` shapes or as ids.

    Two filters: the latency table's (max $500, 4+ stars, in stock: selective) and in-stock only (most records
    pass). Shapes: the `where` search used to send ($and with >= 0 guards that keep missing values, stored as -1,
    out); the same without the guards; the ids that pass the keyword side's numpy mask (`ids=`, what search sends
    now); and no filter, for scale. Rounds alternate the order.
    """
    from index.search import Filters, where_clause

    kw = index.keyword("products")
    vectors = ef(QUERIES)
    out: dict = {}
    for label, f, unguarded in (
        ("selective", Filters(max_price=500, min_rating=4.0, in_stock=True),
         {"$and": [{"in_stock": {"$eq": True}}, {"price": {"$lte": 500.0}}, {"rating": {"$gte": 4.0}}]}),
        ("broad", Filters(in_stock=True), None),
    ):
        mask_start = time.perf_counter()
        allowed = kw.passing_ids(f)
        mask_ms = (time.perf_counter() - mask_start) * 1000
        shapes = {"where_current": {"where": where_clause(f)}, "ids_from_mask": {"ids": allowed}, "no_filter": {}}
        if unguarded:
            shapes["where_no_guards"] = {"where": unguarded}
        times: dict[str, list[float]] = {k: [] for k in shapes}
        cpu: dict[str, list[float]] = {k: [] for k in shapes}
        found: dict[str, set] = {}
        names = list(shapes)
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                for q, vec in zip(QUERIES, vectors, strict=True):
                    start, cpu_start = time.perf_counter(), time.process_time()
                    res = col.query(query_embeddings=[vec], n_results=50, include=["metadatas", "distances"],
                                    **shapes[name])
                    times[name].append((time.perf_counter() - start) * 1000)
                    cpu[name].append((time.process_time() - cpu_start) * 1000)
                    if r == 0:
                        found.setdefault(name, set()).update((q, rid) for rid in res["ids"][0])
        out[label] = {"filter": {k: v for k, v in vars(f).items() if v is not None}, "passing_records": len(allowed),
                      "mask_and_ids_ms": round(mask_ms, 2), "shapes": {
                          name: {"p50_ms": round(pct(times[name], 0.5), 1), "p95_ms": round(pct(times[name], 0.95), 1),
                                 "cpu_p50_ms": round(pct(cpu[name], 0.5), 1), "n": len(times[name]),
                                 "same_results_as_where": found[name] == found["where_current"]}
                          for name in names}}
        print(f"filter shapes, {label}: {json.dumps(out[label])}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embed-n", type=int, default=512, help="real documents to embed for throughput")
    ap.add_argument("--scale", type=int, default=100_000, help="products in the scale index")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--query-threads", default=None,
                    help="comma-separated torch thread counts: measure only query embedding latency at each")
    ap.add_argument("--rounds", type=int, default=None,
                    help="alternating rounds for --query-threads (default 20) and --filter-shapes (default 4)")
    ap.add_argument("--runtimes", default="onnx-int8,onnx,torch",
                    help="embedding runtimes to measure, comma-separated (the first one builds the scale index)")
    ap.add_argument("--embed-all", action="store_true",
                    help="embed every scale record for real (build time measured, not extrapolated; slow on a CPU)")
    ap.add_argument("--filter-shapes", action="store_true",
                    help="also time Chroma's filtered vector query per filter shape on the scale index")
    args = ap.parse_args(argv)

    if args.query_threads:
        start_load = os.getloadavg()
        print(f"start: loadavg {start_load}, cpu_count {os.cpu_count()}", file=sys.stderr)
        result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_at_start": start_load},
                  "query_embedding": query_threads_bench([int(t) for t in args.query_threads.split(",")],
                                                         args.rounds or 20)}
        return _finish(result, args.out)

    import chromadb
    import torch
    from chromadb.config import Settings as ChromaSettings

    from index.embeddings import LocalEmbeddingFunction
    from index.search import Filters, SearchIndex
    from shopdesk.models import embedding_onnx, resolve_embedding_model
    from shopdesk.settings import Settings

    torch.set_num_threads(args.threads)
    result: dict = {"machine": {"cpus": os.cpu_count(), "threads": args.threads, "platform": platform.platform(),
                                "loadavg_at_start": os.getloadavg()}}
    print(f"start: loadavg {os.getloadavg()}, cpu_count {os.cpu_count()}, threads {args.threads}", file=sys.stderr)
    flops = matmul_flops(args.threads)
    result["matmul_fp32_gflops"] = round(flops / 1e9, 1)
    print(f"fp32 matmul: {flops / 1e9:.1f} GFLOP/s", file=sys.stderr)

    model_path = resolve_embedding_model(Settings())
    torch_ef = LocalEmbeddingFunction(model_path, batch_size=64, threads=args.threads)
    st_model = torch_ef.model  # the tokenizer and parameter count of the model measured (and the torch runtime)
    base = catalog_records()
    docs = [r["doc"] for r in base]
    sample = (docs * (args.embed_n // len(docs) + 1))[: args.embed_n]
    lengths = [min(len(st_model.tokenizer(d)["input_ids"]), st_model.max_seq_length) for d in sample]
    tokens = statistics.mean(lengths)
    fpt = model_flops_per_token(st_model, int(tokens))
    ceiling = flops / (fpt["flops_per_token"] * tokens)
    result["embedding"] = {"records": len(sample), "tokens_per_record_mean": round(tokens, 1), **fpt,
                           "ceiling_records_per_s": round(ceiling, 1), "runtimes": {}}
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    ceilings = {r: ceiling for r in runtimes}
    if "onnx-int8" in runtimes:
        # the int8 runtime's own ceiling: its integer GEMM rate over the same operations per record (softmax, layer
        # norms and the quantization of activations stay fp32, so this ceiling is above what int8 can reach)
        ops = matmul_int8_ops(args.threads)
        result["matmul_int8_gops"] = round(ops / 1e9, 1)
        ceilings["onnx-int8"] = ops / (fpt["flops_per_token"] * tokens)
        result["embedding"]["ceiling_int8_records_per_s"] = round(ceilings["onnx-int8"], 1)
        print(f"int8 matmul (ONNX Runtime MatMulInteger): {ops / 1e9:.1f} GOP/s", file=sys.stderr)
    embedders, vectors_by = {}, {}
    for runtime in runtimes:
        ef = torch_ef if runtime == "torch" else LocalEmbeddingFunction(
            model_path, batch_size=64, threads=args.threads, quantized=runtime == "onnx-int8",
            onnx_path=str(embedding_onnx(Settings(embedding_runtime=runtime))))
        ef(sample[:64])  # warm-up (and the load)
        vectors = []
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(0, len(sample), 64):
            vectors += ef(sample[i : i + 64])
        spent = time.perf_counter() - start
        cpu_spent = time.process_time() - cpu_start
        rate = len(sample) / spent
        embedders[runtime], vectors_by[runtime] = ef, vectors
        result["embedding"]["runtimes"][runtime] = {
            "seconds": round(spent, 2), "records_per_s": round(rate, 1),
            # process CPU seconds over all threads: what the work cost, whatever else shared the cores
            "cpu_seconds": round(cpu_spent, 2), "records_per_cpu_s": round(len(sample) / cpu_spent, 1),
            "tokens_per_s": round(rate * tokens, 0), "share_of_ceiling": round(rate / ceiling, 3),
            "share_of_own_ceiling": round(rate / ceilings[runtime], 3),
        }
        print(f"embedding ({runtime}): {rate:.1f} records/s = {rate / ceiling:.0%} of the fp32 ceiling {ceiling:.1f} "
              f"records/s ({tokens:.0f} tokens/record)"
              + (f"; {rate / ceilings[runtime]:.0%} of its own int8 ceiling {ceilings[runtime]:.1f} records/s"
                 if ceilings[runtime] != ceiling else ""), file=sys.stderr)
    if len(runtimes) > 1:
        first, *others = runtimes
        ref = np.asarray(vectors_by[first], dtype=np.float32)
        for other in others:
            got = np.asarray(vectors_by[other], dtype=np.float32)
            ratio = (result["embedding"]["runtimes"][first]["records_per_s"]
                     / result["embedding"]["runtimes"][other]["records_per_s"])
            result["embedding"][f"{first}_vs_{other}"] = {"speed_ratio": round(ratio, 2),
                                                          "min_cosine": round(float((ref * got).sum(1).min()), 6)}
            print(f"embedding: {first} is {ratio:.2f}x {other}; lowest cosine between their vectors "
                  f"{(ref * got).sum(1).min():.6f}", file=sys.stderr)
    ef, vectors = embedders[runtimes[0]], vectors_by[runtimes[0]]
    rate = result["embedding"]["runtimes"][runtimes[0]]["records_per_s"]

    # -------- scale index
    # the scale index reuses the vectors just measured: the first --embed-n catalog products are its bases
    n_base = min(len(base), len(sample))
    base, base_vecs = base[:n_base], np.asarray(vectors[:n_base], dtype=np.float32)
    result["scale_bases"] = n_base
    records = synthesise(base, args.scale)
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    client = chromadb.PersistentClient(path=str(tmp / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_or_create_collection("products", embedding_function=ef,
                                          configuration={"hnsw": {"space": "cosine"}})
    embed_s = embed_cpu_s = 0.0
    if args.embed_all:  # the real thing: every record's own document through the embedder, as `index build` does
        from tqdm import tqdm

        start, cpu_start = time.perf_counter(), time.process_time()
        own: list = []
        for i in tqdm(range(0, len(records), 64), desc="embedding scale records", unit="batch", file=sys.stderr):
            own += ef([r["doc"] for r in records[i : i + 64]])
        embed_s, embed_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        own_vecs = np.asarray(own, dtype=np.float32)
    start, cpu_start = time.perf_counter(), time.process_time()
    batch = 5000
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        if args.embed_all:
            vecs = own_vecs[i : i + batch]
        else:
            vecs = base_vecs[[r["base"] for r in chunk]] + rng.normal(0, 0.02, (len(chunk), base_vecs.shape[1]))
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        col.add(ids=[r["id"] for r in chunk], embeddings=vecs.astype(np.float32), documents=[r["doc"] for r in chunk],
                metadatas=[{"product_id": r["id"], "title": r["title"][:500], "category": r["category"],
                            "category_key": r["category"].lower(), "brand": r["title"].split()[0],
                            "price": float(r["price"]), "price_max": float(r["price"]), "rating": float(r["rating"]),
                            "rating_count": 0, "in_stock": bool(r.get("in_stock", True))} for r in chunk])
        print(f"inserted {i + len(chunk)}/{len(records)}", file=sys.stderr)
    insert_s = time.perf_counter() - start
    insert_cpu_s = time.process_time() - cpu_start
    settings = Settings(data_dir=tmp, chroma_path=tmp / "chroma")
    index = SearchIndex(settings, client=client, ef=ef)
    start = time.perf_counter()
    index.keyword("products")
    bm25_s = time.perf_counter() - start
    estimated_s = insert_s + len(records) / rate
    result["scale"] = {
        "products": len(records),
        "vectors": ("embedded: every record's own document" if args.embed_all else
                    "reused: the measured vectors of the base products plus noise, not embedded at scale"),
        "chroma_insert_s": round(insert_s, 1),
        "chroma_insert_cpu_s": round(insert_cpu_s, 1),
        "bm25_index_s": round(bm25_s, 1),
        "embedding_s_extrapolated": round(len(records) / rate, 0),
        "build_s_estimated": round(estimated_s, 0),
        "note": "build_s_estimated = measured Chroma insert + embedding time extrapolated from measured records/s",
    }
    if args.embed_all:
        result["scale"].update({
            "embedding_s_measured": round(embed_s, 1), "embedding_cpu_s": round(embed_cpu_s, 1),
            "embedding_records_per_s_at_scale": round(len(records) / embed_s, 1),
            "build_s_measured": round(embed_s + insert_s, 1),
            "measured_over_estimated": round((embed_s + insert_s) / estimated_s, 3),
        })
    print(json.dumps(result["scale"]), file=sys.stderr)

    if args.filter_shapes:
        result["filter_shapes"] = filter_shapes(index, col, ef, args.rounds or 4)

    queries = [r["title"].split(" - ")[0][:40] for r in random.Random(1).sample(base, min(len(base), args.queries))]
    vague = ["quiet soundbar for a small room", "laptop for college", "wireless earbuds for running",
             "camera to film my kids", "tv for a bright living room"]
    queries = (queries + vague * (args.queries // 5 + 1))[: args.queries]
    latency: dict = {}
    cases = (("no_filters", None), ("filters", Filters(max_price=500, min_rating=4.0, in_stock=True)))
    for label, f in cases if queries else ():
        for mode in ("hybrid", "vector", "bm25"):
            times, cpu = [], []
            for q in queries:
                start, cpu_start = time.perf_counter(), time.process_time()
                index.search_products(q, Filters(**vars(f)) if f else Filters(), 10, mode=mode, parse=False)
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - cpu_start) * 1000)
            latency[f"{mode}_{label}"] = {"p50_ms": round(pct(times, 0.5), 1), "p95_ms": round(pct(times, 0.95), 1),
                                          "cpu_p50_ms": round(pct(cpu, 0.5), 1)}
            print(f"{mode} {label}: {latency[f'{mode}_{label}']}", file=sys.stderr)
    result["query_latency"] = latency
    return _finish(result, args.out)


def _finish(result: dict, out: Path | None) -> dict:
    """Load average at the end, then the result as JSON on stdout (and in OUT when given)."""
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    print(f"end: loadavg {os.getloadavg()}, cpu_count {os.cpu_count()}", file=sys.stderr)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
