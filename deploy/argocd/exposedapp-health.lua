-- Argo CD health check for exposedapp.dev/ExposedApp.
--
-- Install it under the key resource.customizations.health.exposedapp.dev_ExposedApp of
-- the argocd-cm ConfigMap (README: "GitOps health"). It reads what the operator publishes:
-- status.observedGeneration against metadata.generation, then the conditions Stalled,
-- Degraded, Ready and Progressing (reason Paused). Argo CD runs it with gopher-lua (Lua
-- 5.1); it uses nothing beyond Lua 5.1.
local hs = {status = "Progressing", message = "Waiting for the operator to report status"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation or 0
local observed = obj.status.observedGeneration or 0
if observed < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions or {}) do
  conditions[condition.type] = condition
end
local function said(condition)
  return (condition.reason or "") .. ": " .. (condition.message or "")
end
for _, kind in ipairs({"Stalled", "Degraded"}) do
  local condition = conditions[kind]
  if condition ~= nil and condition.status == "True" then
    return {status = "Degraded", message = said(condition)}
  end
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = said(ready)}
end
local progressing = conditions["Progressing"]
if progressing ~= nil and progressing.reason == "Paused" then
  return {status = "Suspended", message = said(progressing)}
end
if ready ~= nil then
  hs.message = said(ready)
end
return hs
