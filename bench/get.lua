-- wrk script: GET $TARGET with $TOKEN; counts non-2xx.
local token = os.getenv("TOKEN")
local target = os.getenv("TARGET")
request = function()
  return wrk.format("GET", target, { ["X-Auth-Token"] = token })
end
response = function(status, headers, b)
  if status >= 300 then print("unexpected status " .. status .. ": " .. b) end
end
