"""Write a synthetic customer file for create: `python sample_data/generate.py N [--out FILE] [--bad F]`.

Realistic enough to exercise everything: accented names, both sign-in types, blocked
accounts, usage locations, provided and generated passwords, and (with --bad) a share of
rows that are wrong on purpose. Deterministic for a given --seed. Streams, so ten million
rows take no memory.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys

FIRST = ["Ada", "Chloé", "Zoë", "José", "Björn", "Léa", "Mohammed", "Aiko", "Ngozi", "Søren", "Émile", "Inés",
         "Ravi", "Olga", "Tomás", "Amélie", "Kwame", "Mei", "François", "Jürgen", "Ana", "Liam", "Noa", "Zeynep"]
LAST = ["Lovelace", "Dupont", "Müller", "García", "Ølstad", "Nakamura", "Okafor", "Kowalski", "Brontë", "Núñez",
        "Smith", "O'Brien", "Van der Berg", "Rossi", "Chen", "Haddad", "Silva", "Novak", "Ivanova", "Dubois"]
COUNTRIES = ["US", "FR", "DE", "ES", "NO", "JP", "NG", "PL", "GB", "MX", "NA", "BR", "IN", "CA"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "contoso-mail.example"]
HEADER = ["signInType", "signInName", "displayName", "givenName", "surname", "blockSignIn", "usageLocation",
          "mail", "password", "forceChangePasswordNextSignIn"]
ASCII = str.maketrans("éèëçüöøñáíóúåäÉØ", "eeecuoonaiouaaEO")


def rows(n: int, seed: int, bad: float, prefix: str) -> "list[list[str]]":
    rng = random.Random(seed)
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        slug = f"{first}.{last}".lower().translate(ASCII).replace(" ", "").replace("'", "")
        by_email = rng.random() < 0.8
        name = f"{slug}.{prefix}{i}@{rng.choice(DOMAINS)}" if by_email else f"{slug.replace('.', '_')}_{prefix}{i}"
        password = f"Legacy-{rng.randrange(10**6):06d}!x" if rng.random() < 0.3 else ""
        row = ["emailAddress" if by_email else "userName", name, f"{first} {last}", first, last,
               "Yes" if rng.random() < 0.05 else "No", rng.choice(COUNTRIES), "", password, ""]
        if rng.random() < bad:
            kind = rng.randrange(5)
            if kind == 0:
                row[2] = ""                      # no display name
            elif kind == 1:
                row[1] = name.replace("@", " at ") if by_email else "-" + name  # bad sign-in name
            elif kind == 2:
                row[6] = "XX"                    # not a country
            elif kind == 3:
                row[8] = "short"                 # weak password
            else:
                row[5] = "maybe"                 # not a boolean
        yield row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, help="number of rows")
    parser.add_argument("--out", help="file to write (default: stdout)")
    parser.add_argument("--bad", type=float, default=0.0, help="share of rows that are wrong on purpose (0-1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prefix", default="c", help="makes sign-in names unique across files")
    args = parser.parse_args()
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(HEADER)
        writer.writerows(rows(args.n, args.seed, args.bad, args.prefix))
    finally:
        if args.out:
            out.close()


if __name__ == "__main__":
    main()
