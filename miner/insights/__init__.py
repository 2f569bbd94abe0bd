"""What a planner reads from the topics: trends, calendar, audience, opportunity, briefs, search."""
