-- wrk script: random HTTP announces over a fixed set of info-hashes.
--   wrk -s announce.lua URL -- HASHES_FILE close|keepalive
-- HASHES_FILE: one 40-hex info-hash a line. Each request picks a random hash, a random
-- peer (peer_id and port), and random left/event, like a swarm of many clients.
-- `close` sends "Connection: close" so every request opens a new connection.
-- At the end prints "bench: failures=N ok=N" counted from response bodies.

local hashes = {}
local close = false
local path = "/announce"

local function pct(hex)
  return (hex:gsub("..", function(b) return "%" .. b:upper() end))
end

function setup(thread)
  threads = threads or {}
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  close = args[2] == "close"
  for line in io.lines(file) do
    if #line >= 40 then table.insert(hashes, pct(line:sub(1, 40))) end
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  failures = 0
  ok = 0
end

local alnum = "0123456789abcdefghijklmnopqrstuvwxyz"
local function peer_id()
  local t = {"-BE0001-"}
  for i = 1, 12 do
    local k = math.random(1, #alnum)
    t[#t + 1] = alnum:sub(k, k)
  end
  return table.concat(t)
end

function request()
  local h = hashes[math.random(1, #hashes)]
  local left = (math.random(1, 4) == 1) and 0 or math.random(1, 1000000)
  local q = string.format(
    "%s?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&numwant=50%s",
    path, h, peer_id(), math.random(1025, 65535), left,
    (math.random(1, 10) == 1) and "&event=started" or "")
  local headers = {}
  if close then headers["Connection"] = "close" end
  return wrk.format("GET", q, headers)
end

function response(status, headers, body)
  if status ~= 200 or body:find("failure reason", 1, true) then
    failures = failures + 1
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local f, o = 0, 0
  for _, t in ipairs(threads) do
    f = f + (t:get("failures") or 0)
    o = o + (t:get("ok") or 0)
  end
  io.write(string.format("bench: failures=%d ok=%d\n", f, o))
end
