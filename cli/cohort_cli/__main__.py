from cohort_cli.main import app

app(prog_name="cohort")
