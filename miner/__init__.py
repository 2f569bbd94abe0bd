"""选题雷达 Topic Miner: topic mining for Chinese social content (notes → topics → trends → briefs)."""

__version__ = "0.1.0"
