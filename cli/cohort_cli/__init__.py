"""Operator CLI for Cohort Import: keys, profiles, a Mixpanel-style producer, tables and a live tail."""
