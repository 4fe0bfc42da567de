from llmobs.cli import app

app(prog_name="llmobs")
