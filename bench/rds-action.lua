-- wrk script: RDS tags/action create of one tag on one of 1000 registered instances.
-- Env: TOKEN, PROJECT. Keys cycle through 5 names, so instances stay under their limit
-- and most writes are overwrites.
local token = os.getenv("TOKEN")
local project = os.getenv("PROJECT")
local counter = 0

request = function()
  counter = counter + 1
  local instance = "rds-" .. (counter * 7919 % 1000)
  local body = string.format(
    '{"action":"create","tags":[{"key":"k%d","value":"v%d"}]}', counter % 5, counter)
  return wrk.format("POST", "/v3/" .. project .. "/instances/" .. instance .. "/tags/action",
    { ["X-Auth-Token"] = token, ["Content-Type"] = "application/json" }, body)
end

response = function(status, headers, body)
  if status ~= 204 then
    print("unexpected status " .. status .. ": " .. body)
  end
end
