"""What a model's top-k lists look like beyond their hits: how much of the catalog they reach,
how much of them goes to the most popular movies, and a few users' lists to read."""

import math
from typing import Dict, List, Sequence, Tuple

from components import features as F
from components.evaluation.ranking_eval import HeldOut, Recommend

POPULAR_SHARE = 0.1  # the most popular movies: this share of the catalog
# Nobody's id: the model serves an unknown user by popularity (its training ratings' share).
UNKNOWN_USER = ""


def popular_items(recommend: Recommend, catalog_size: int) -> List[str]:
    """The POPULAR_SHARE most popular of the catalog's items, as the model ranks them."""
    return [item for item, _ in recommend([UNKNOWN_USER],
                                          math.ceil(POPULAR_SHARE * catalog_size))[0]]


def top_k_profile(recommended: Dict[str, Sequence[Tuple[str, float]]], catalog_size: int,
                  popular: Sequence[str]) -> Dict[str, float]:
    """Coverage: the share of the catalog in anybody's list; popular share: the share of the
    lists' slots that went to the popular items."""
    slots = [item for rows in recommended.values() for item, _ in rows]
    popular = set(popular)
    return {"catalog_items": catalog_size, "users": len(recommended),
            "coverage": len(set(slots)) / max(catalog_size, 1),
            "popular_items": len(popular),
            "popular_share": sum(item in popular for item in slots) / max(len(slots), 1)}


def example_lists(recommended: Dict[str, Sequence[Tuple[str, float]]], held: HeldOut,
                  feature: str = F.USER_ACTIVITY) -> List[Dict[str, object]]:
    """One user of each value of `feature` (the lowest id): their list, each item marked where
    it is among their held-out ratings."""
    chosen: Dict[str, str] = {}
    for user in sorted(held.slices, key=lambda u: (len(u), u)):
        chosen.setdefault(held.slices[user].get(feature, ""), user)
    return [{"user_id": user, "slice": f"{feature}={value}",
             "items": [{"item_id": item, "score": score,
                        "held_out": item in held.relevant[user]}
                       for item, score in recommended[user]]}
            for value, user in sorted(chosen.items())]
