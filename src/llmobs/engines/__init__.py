"""Engine-specific code: what the kit needs to run or describe one particular inference engine.

The simulators (`llmobs.sim`) stand in for engines; this subpackage holds what belongs to a real one,
such as the tiny GGUF model that the lab's real llama.cpp server loads (`tiny_gguf`).
"""
