-- wrk script: POST the JSON body in $BODY to $TARGET with $TOKEN; counts non-2xx.
local token = os.getenv("TOKEN")
local body = os.getenv("BODY")
local target = os.getenv("TARGET")
request = function()
  return wrk.format("POST", target, { ["X-Auth-Token"] = token, ["Content-Type"] = "application/json" }, body)
end
response = function(status, headers, b)
  if status >= 300 then print("unexpected status " .. status .. ": " .. b) end
end
