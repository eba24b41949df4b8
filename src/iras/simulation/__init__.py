"""`iras simulate`: replay an arrival trace through the real scaling policy and others.

A discrete-event simulation of the request queue and a worker fleet (boot delays,
batching, per-second billing with a minimum), in small modules: `traces` (load or
generate arrival times), `types` (the fleet, an instance, a view, a run), `engine` (the
event loop), `looks` (look-based policies and the driver that runs their looks),
`policies` (`iras.scaler.policy.decide` itself, as the gateway's controller runs it),
`keda` and `target_tracking` (the reference autoscalers with their defaults), `oracle`
(a schedule made knowing every arrival), `runs` (a scenario under each policy by name),
`report` (figures, table, JSON) and `plot` (matplotlib, imported only for a chart).
"""

#: Every policy `iras simulate` knows, in the order it reports them.
POLICY_NAMES = ("iras", "backlog", "keda", "target-tracking", "oracle")
