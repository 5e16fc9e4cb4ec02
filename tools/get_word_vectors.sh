#!/usr/bin/env bash
# Fetch pretrained Chinese word vectors for the students' --init_embeddings and the --nn_vectors of
# the nearest-neighbour augmentation rule (--p_nn).
#
# Source: the PyPI package synonyms, version 3.8.0 (its source distribution, pinned below; later
# versions ship no vectors). synonyms/data/words.vector inside it is a word2vec C binary trained on
# Chinese Wikipedia: 125,796 words x 100 dimensions, Simplified script; stop words and very common
# words (不, 很, 好, 可以) are not in it. Give the students --emb_dim 100 to use it.
# Licence: MIT. Its authors ask that any use cite them:
#   Hai Liang Wang, Hu Ying Xi. 中文近义词工具包Synonyms. 2017. https://github.com/huyingxi/Synonyms
# The archive is only downloaded and read, never installed.
#
# Output: DEST_DIR/words.vector (its path is printed on the last line). A second run reuses it.
# Usage: get_word_vectors.sh [DEST_DIR]   (default: $HOME/.cache/distill_offline/synonyms-3.8.0)
set -euo pipefail
PIN="synonyms==3.8.0"
SHA="73e7a994ad478a9da1ab89f06d4f14d5067b4deccb636299548bd680321e1724"
MEMBER="synonyms-3.8.0/synonyms/data/words.vector"
DEST="${1:-${HOME}/.cache/distill_offline/synonyms-3.8.0}"
PY="${PYTHON:-python3}"

if [ -s "$DEST/words.vector" ]; then
  echo "$DEST/words.vector"; exit 0
fi
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
echo "downloading $PIN (54 MB) ..." >&2
if ! "$PY" -m pip download -q --no-deps --no-binary=:all: -d "$TMP" "$PIN" >&2; then
  echo "error: pip could not download $PIN (offline, or no package index reachable)" >&2; exit 1
fi
ARCHIVE="$TMP/synonyms-3.8.0.tar.gz"
if ! echo "$SHA  $ARCHIVE" | sha256sum -c --status -; then
  echo "error: $(basename "$ARCHIVE") has sha256 $(sha256sum "$ARCHIVE" | cut -d' ' -f1), expected $SHA" >&2; exit 1
fi
tar -xzf "$ARCHIVE" -O "$MEMBER" > "$TMP/words.vector"
# through a .part beside the target: a copy cut short across file systems is never taken for the file
mkdir -p "$DEST"; mv "$TMP/words.vector" "$DEST/words.vector.part"; mv "$DEST/words.vector.part" "$DEST/words.vector"
echo "$DEST/words.vector"
