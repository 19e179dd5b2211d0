"""Writes the small toy data sets that the example configs use (run from the repository root).

They are synthetic, made from templates, only to show each file format and label kind working end to
end in seconds. For real results use your own data or the disaster tweets.

    python examples/data/make_toy_data.py
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent

TOPICS = {
    "sports": ["the match ended in a late goal", "the team signed a new striker", "record crowd at the final",
               "coach praises defence after win", "injury rules captain out of derby"],
    "politics": ["parliament passes the budget bill", "minister resigns after vote", "senate debates new law",
                 "election turnout hits record", "mayor announces tax reform"],
    "tech": ["new phone chip doubles battery life", "startup releases open source database",
             "app update fixes security flaw", "cloud outage hits websites", "laptop maker unveils thinner model"],
    "health": ["study links sleep to memory", "hospital opens new cancer ward", "flu season starts early",
               "doctors urge vaccination before winter", "new drug lowers blood pressure"],
}
TAGS = {"fire": ["smoke", "flames", "burning", "wildfire"], "flood": ["water", "river", "flooded", "rain"],
        "injury": ["injured", "hurt", "ambulance", "wounded"]}
FILLER = ["near the station", "this morning", "in our street", "downtown", "right now", "please help"]


def topics(rng, n):
    rows = []
    for i in range(n):
        topic = list(TOPICS)[i % len(TOPICS)]
        rows.append(f"{rng.choice(TOPICS[topic])} {rng.choice(FILLER)}".replace(",", "") + f",{topic}")
    return "text,label\n" + "\n".join(rows) + "\n"


def tags(rng, n):
    lines = []
    for _ in range(n):
        chosen = sorted(rng.sample(list(TAGS), rng.randint(1, 2)))
        words = [rng.choice(TAGS[t]) for t in chosen] + [rng.choice(FILLER)]
        rng.shuffle(words)
        lines.append(json.dumps({"text": " ".join(words), "tags": chosen}))
    return "\n".join(lines) + "\n"


def urgency(rng, n):
    rows = []
    for _ in range(n):
        score = round(rng.uniform(0, 5), 1)
        words = ["help", "urgent", "trapped", "now"][: int(score) % 5] + [rng.choice(FILLER), "update"]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{score}")
    return "text,urgency\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    rng = random.Random(0)
    for name, make, suffix in (("topics", topics, "csv"), ("tags", tags, "jsonl"), ("urgency", urgency, "csv")):
        (HERE / f"{name}_train.{suffix}").write_text(make(rng, 80))
        (HERE / f"{name}_val.{suffix}").write_text(make(rng, 20))
