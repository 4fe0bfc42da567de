"""The promtool scenarios, one module per area (as kubernetes-mixin's tests/<area>-test.yaml), one function
per scenario. Each area's `scenarios(fleet)` lists them in file order."""
