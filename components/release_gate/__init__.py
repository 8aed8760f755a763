"""The release gate's ranking half: NDCG@10 over the catalog before Pusher."""
