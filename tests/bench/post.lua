-- wrk script of the ingress benchmark (scripts/bench.sh): keep-alive POSTs of pre-signed
-- webhooks from the pool file written by tests/bench/gen_pool.py (one per line:
-- key, event, event id, webhook id, signature, body; tab-separated). Each wrk thread starts
-- at its own place in the pool and walks through it in order.
--
--   BENCH_POOL=pool.tsv [BENCH_PATH=/webhooks/duro] wrk -s post.lua --latency ... URL
--
-- done() prints one line "BENCHJSON {...}" with the counts and the latency percentiles
-- (microseconds); "non2xx" is wrk's count of answers with status > 399.
local pool_path = os.getenv("BENCH_POOL")
local path = os.getenv("BENCH_PATH") or "/webhooks/duro"
local threads = {}
local reqs = {}
local idx = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(pool_path, "r"), "cannot open BENCH_POOL")
  for line in f:lines() do
    local key, ev, id, wid, sig, body =
      line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if sig then
      reqs[#reqs + 1] = wrk.format("POST", path,
        {["Content-Type"] = "application/json", ["X-Duro-Signature"] = sig}, body)
    end
  end
  f:close()
  assert(#reqs > 0, "empty pool")
  idx = (tid * 7919) % #reqs
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,"lat_max_us":%d,"lat_mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read,
    e.write, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
