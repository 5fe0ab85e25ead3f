"""animate-many: many animations (or reconstructions) with one bundle, by workers that each
load it once, on this machine's cores (local) or on a Ray cluster (ray), nothing lost.

jobfile (what to do) -> run (plan, schedule, summary; results: the results file) ->
engine (local: worker processes; ray_engine: Ray actors) -> work (one job in a worker).
"""
