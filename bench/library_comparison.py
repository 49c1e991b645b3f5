"""Libraries against our own code, on the same data: language (lingua), mojibake (ftfy), near duplicates (datasketch).

    python bench/library_comparison.py                      # quality, then time at 150,000 and 1,000,000 records
    python bench/library_comparison.py --sizes 20000        # a quick run

Quality, per task:
- language: the `other_language` flag (instruction + response not English) on the real excerpt's
  37 hand-labelled records, and on generated records: sentences in 20 other languages (10 of them
  in non-Latin scripts), long (8 words and more) and short (2 to 7 words), beside English ones
  (the excerpt's own texts, whole and cut short, and lists of names). Ours (function words and
  Latin share), lingua over its 75 languages (high and low accuracy mode), and ours with lingua
  (low accuracy) asked only where ours is unsure: under 8 words, or under 10% English function words.
- mojibake: the `mojibake` flag and its repair, on the excerpt, on words with accents, curly quotes,
  dashes and symbols encoded as UTF-8 and read as Windows-1252 (once, and twice), with U+FFFD, and on
  correct text that looks close (accents, "SÃO PAULO" in capitals). Ours against ftfy.fix_encoding.
- near duplicates: generated records and a copy of each with 0, 5, 10, 20 or 30% of its words
  replaced; which copies end up grouped with their original. Ours (MinHash 64 permutations,
  32 bands x 2 rows, exact Jaccard >= 0.6) against datasketch (MinHash 128 permutations, MinHashLSH
  at threshold 0.6 with the bands x rows it picks, then the same exact Jaccard check). Beside the
  recall, the S-curve: the probability that a pair becomes an LSH candidate, 1 - (1 - s^r)^b,
  against the share of pairs that did, by Jaccard similarity s.

Time: each method on the records of bench/dolly_generator.py at each size (a method that would
take more than --budget seconds at a size is timed on a sample and scaled up, and marked so).
Writes bench/results/library-<timestamp>.json and prints the tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from curation_assets.defs.source_loading import load_shipped_dolly_excerpt  # noqa: E402
from curation_assets.logic import quality  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
LABELS_PATH = BENCH_DIR / "quality_labels_dolly_excerpt.json"
EDIT_RATES = (0.0, 0.05, 0.1, 0.2, 0.3)
SAMPLE_RECORDS = 20_000  # a method too slow for the full size is timed on this many and scaled up

# Everyday sentences, written for this comparison, in languages that are not English.
SENTENCES = {
    "de": ["Der Zug fährt jeden Morgen um sieben Uhr vom Hauptbahnhof ab.", "Kannst du mir sagen, wie ich zum Rathaus komme?",
           "Im Sommer wandern wir gern in den Bergen und schwimmen im See.", "Das Buch erzählt die Geschichte einer Familie in Berlin."],
    "es": ["El tren sale cada mañana a las siete de la estación central.", "¿Puedes decirme cómo llegar al ayuntamiento?",
           "En verano nos gusta caminar por la montaña y nadar en el lago.", "El libro cuenta la historia de una familia en Madrid."],
    "fr": ["Le train part chaque matin à sept heures de la gare centrale.", "Peux-tu me dire comment aller à la mairie ?",
           "En été, nous aimons marcher en montagne et nager dans le lac.", "Le livre raconte l'histoire d'une famille à Paris."],
    "it": ["Il treno parte ogni mattina alle sette dalla stazione centrale.", "Puoi dirmi come arrivare al municipio?",
           "D'estate ci piace camminare in montagna e nuotare nel lago.", "Il libro racconta la storia di una famiglia a Roma."],
    "pt": ["O comboio parte todas as manhãs às sete horas da estação central.", "Podes dizer-me como chegar à câmara municipal?",
           "No verão gostamos de caminhar na montanha e nadar no lago.", "O livro conta a história de uma família em Lisboa."],
    "nl": ["De trein vertrekt elke ochtend om zeven uur van het centraal station.", "Kun je me vertellen hoe ik bij het stadhuis kom?",
           "In de zomer wandelen we graag in de bergen en zwemmen we in het meer.", "Het boek vertelt het verhaal van een familie in Utrecht."],
    "sv": ["Tåget går varje morgon klockan sju från centralstationen.", "Kan du säga hur jag kommer till stadshuset?",
           "På sommaren vandrar vi gärna i fjällen och badar i sjön.", "Boken berättar historien om en familj i Göteborg."],
    "pl": ["Pociąg odjeżdża codziennie rano o siódmej z dworca głównego.", "Czy możesz mi powiedzieć, jak dojść do ratusza?",
           "Latem lubimy chodzić po górach i pływać w jeziorze.", "Książka opowiada historię rodziny z Krakowa."],
    "tr": ["Tren her sabah saat yedide merkez istasyondan kalkıyor.", "Belediye binasına nasıl gideceğimi söyleyebilir misin?",
           "Yazın dağlarda yürümeyi ve gölde yüzmeyi severiz.", "Kitap İzmir'de yaşayan bir ailenin hikayesini anlatıyor."],
    "id": ["Kereta berangkat setiap pagi pukul tujuh dari stasiun pusat.", "Bisakah kamu memberi tahu saya jalan ke balai kota?",
           "Pada musim kemarau kami suka mendaki gunung dan berenang di danau.", "Buku itu menceritakan kisah sebuah keluarga di Bandung."],
    "ru": ["Поезд отправляется каждое утро в семь часов с центрального вокзала.", "Ты можешь сказать, как пройти к ратуше?",
           "Летом мы любим гулять в горах и плавать в озере.", "Книга рассказывает историю одной семьи из Москвы."],
    "uk": ["Потяг вирушає щоранку о сьомій годині з центрального вокзалу.", "Чи можеш ти сказати, як дійти до ратуші?",
           "Влітку ми любимо ходити в гори та плавати в озері.", "Книжка розповідає історію однієї родини з Києва."],
    "el": ["Το τρένο φεύγει κάθε πρωί στις επτά από τον κεντρικό σταθμό.", "Μπορείς να μου πεις πώς να πάω στο δημαρχείο;",
           "Το καλοκαίρι μας αρέσει να περπατάμε στα βουνά και να κολυμπάμε στη λίμνη.", "Το βιβλίο αφηγείται την ιστορία μιας οικογένειας στην Αθήνα."],
    "ar": ["يغادر القطار كل صباح في الساعة السابعة من المحطة المركزية.", "هل يمكنك أن تخبرني كيف أصل إلى مبنى البلدية؟",
           "في الصيف نحب المشي في الجبال والسباحة في البحيرة.", "يحكي الكتاب قصة عائلة تعيش في القاهرة."],
    "he": ["הרכבת יוצאת כל בוקר בשעה שבע מהתחנה המרכזית.", "אתה יכול להגיד לי איך מגיעים לבניין העירייה?",
           "בקיץ אנחנו אוהבים לטייל בהרים ולשחות באגם.", "הספר מספר את סיפורה של משפחה בחיפה."],
    "hi": ["ट्रेन हर सुबह सात बजे मुख्य स्टेशन से निकलती है।", "क्या आप मुझे बता सकते हैं कि नगर भवन कैसे पहुँचें?",
           "गर्मियों में हमें पहाड़ों में घूमना और झील में तैरना पसंद है।", "यह किताब दिल्ली में रहने वाले एक परिवार की कहानी बताती है।"],
    "zh": ["火车每天早上七点从中央车站出发。", "你能告诉我怎么去市政厅吗？", "夏天我们喜欢在山里散步，在湖里游泳。", "这本书讲述了一个上海家庭的故事。"],
    "ja": ["電車は毎朝七時に中央駅を出発します。", "市役所への行き方を教えてもらえますか？", "夏は山を歩いたり湖で泳いだりするのが好きです。", "この本は大阪に住む家族の物語です。"],
    "ko": ["기차는 매일 아침 일곱 시에 중앙역에서 출발합니다.", "시청에 어떻게 가는지 알려 줄 수 있어요?",
           "여름에는 산에서 걷고 호수에서 수영하는 것을 좋아합니다.", "이 책은 부산에 사는 한 가족의 이야기를 들려줍니다."],
    "th": ["รถไฟออกจากสถานีกลางทุกเช้าเวลาเจ็ดโมง", "คุณบอกทางไปศาลาว่าการเมืองได้ไหม", "ฤดูร้อนเราชอบเดินเขาและว่ายน้ำในทะเลสาบ", "หนังสือเล่มนี้เล่าเรื่องของครอบครัวหนึ่งในเชียงใหม่"],
}  # fmt: skip
NON_LATIN = {"ru", "uk", "el", "ar", "he", "hi", "zh", "ja", "ko", "th"}
# English that is not prose: names and lists, where a language guess has little to go on.
ENGLISH_NAMES = ["Titleist, Taylormade, Callaway, Ping, Cobra", "Vermeer", "Tony Hawk, Rodney Mullen, Bob Burnquist",
                 "Paris, Berlin, Madrid, Rome, Lisbon", "Lamborghini", "Nikola Tesla and Thomas Edison"]  # fmt: skip
# Text with characters that mojibake damages: accents, curly quotes, dashes, symbols.
ACCENTED = ["café", "naïve", "résumé", "São Paulo", "Zürich", "Ångström", "déjà vu", "façade", "piñata", "jalapeño",
            "it’s", "“quoted”", "‘single’", "2010–2015", "wait — no", "€20", "£5", "50°C", "™", "…", "Œuvre", "señor"]  # fmt: skip


# -- language -------------------------------------------------------------------------------------


def language_cases(seed: int = 0) -> pd.DataFrame:
    """Records with a known language: instruction, response, language ("en" or another), kind."""
    randomness = random.Random(seed)
    rows = []
    for language, sentences in SENTENCES.items():
        script = "non-Latin" if language in NON_LATIN else "Latin"
        for _ in range(25):
            instruction, *response = randomness.sample(sentences, k=3)
            rows.append(
                {
                    "instruction": instruction,
                    "response": " ".join(response),
                    "language": language,
                    "kind": f"long, {script} script",
                }
            )
            sentence = randomness.choice(sentences)
            words = sentence.split()
            # Scripts without spaces between words: a short text is a few characters, not a few words.
            cut = (
                " ".join(words[: randomness.randint(2, min(7, len(words)))])
                if len(words) > 3
                else sentence[: randomness.randint(4, 12)]
            )
            rows.append({"instruction": cut, "response": "", "language": language, "kind": f"short, {script} script"})
    for row in load_shipped_dolly_excerpt().to_dict("records"):
        rows.append(
            {"instruction": row["instruction"], "response": row["response"], "language": "en", "kind": "long, English"}
        )
        for text in (row["instruction"], row["response"]):
            words = text.split()
            rows.append(
                {
                    "instruction": " ".join(words[: randomness.randint(2, 7)]),
                    "response": "",
                    "language": "en",
                    "kind": "short, English",
                }
            )
    for names in ENGLISH_NAMES:
        rows.append(
            {"instruction": "Name a few of them.", "response": names, "language": "en", "kind": "short, English"}
        )
    return pd.DataFrame(rows)


def ours_flags_language(instructions: list[str], responses: list[str]) -> np.ndarray:
    records = pd.DataFrame({"id": [str(index) for index in range(len(instructions))], "instruction": instructions,
                            "context": "", "response": responses, "category": "open_qa"})  # fmt: skip
    flags = quality.compute_quality_signals(records, workers=1)["flags"]
    return np.array(["other_language" in found for found in flags])


class Lingua:
    def __init__(self, low_accuracy: bool):
        from lingua import Language, LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_all_languages()
        self.detector = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()
        self.english = Language.ENGLISH
        self.detector.detect_language_of("warm up: the models load on first use")

    def flags(self, instructions: list[str], responses: list[str]) -> np.ndarray:
        texts = [f"{instruction} {response}".strip() for instruction, response in zip(instructions, responses)]
        found = self.detector.detect_languages_in_parallel_of(texts)
        return np.array([language is not None and language != self.english for language in found])


def hybrid_flags(instructions: list[str], responses: list[str], lingua: Lingua) -> np.ndarray:
    """Ours where it is sure; lingua where it is not (under 8 words, or under 10% English function words)."""
    ours = ours_flags_language(instructions, responses)
    unsure = np.flatnonzero(
        [_unsure(f"{instruction} {response}") for instruction, response in zip(instructions, responses)]
    )
    if len(unsure):
        ours[unsure] = lingua.flags([instructions[index] for index in unsure], [responses[index] for index in unsure])
    return ours


def _unsure(text: str) -> bool:
    words = quality.word_tokens(text)
    english = sum(1 for word in words if word.decode() in quality.ENGLISH_STOPWORDS)
    return len(words) < quality.MIN_WORDS_FOR_LANGUAGE or english < 0.1 * len(words)


def language_quality() -> dict:
    cases = language_cases()
    lingua_high, lingua_low = Lingua(low_accuracy=False), Lingua(low_accuracy=True)
    instructions, responses = cases["instruction"].tolist(), cases["response"].tolist()
    methods = {
        "ours (function words, Latin share)": ours_flags_language(instructions, responses),
        "lingua, high accuracy": lingua_high.flags(instructions, responses),
        "lingua, low accuracy": lingua_low.flags(instructions, responses),
        "ours, lingua (low) where unsure": hybrid_flags(instructions, responses, lingua_low),
    }
    expected = (cases["language"] != "en").to_numpy()
    excerpt = load_shipped_dolly_excerpt()
    labelled = set(json.loads(LABELS_PATH.read_text())["labels"].get("other_language", []))
    excerpt_expected = excerpt["id"].isin(labelled).to_numpy()
    excerpt_flags = {
        "ours (function words, Latin share)": ours_flags_language(
            excerpt["instruction"].tolist(), excerpt["response"].tolist()
        ),
        "lingua, high accuracy": lingua_high.flags(excerpt["instruction"].tolist(), excerpt["response"].tolist()),
        "lingua, low accuracy": lingua_low.flags(excerpt["instruction"].tolist(), excerpt["response"].tolist()),
        "ours, lingua (low) where unsure": hybrid_flags(
            excerpt["instruction"].tolist(), excerpt["response"].tolist(), lingua_low
        ),
    }
    results = {}
    for name, flagged in methods.items():
        by_kind = {}
        for kind, rows in cases.groupby("kind").groups.items():
            rows = np.asarray(rows)
            by_kind[kind] = {"records": len(rows), "flagged": int(flagged[rows].sum())}
        results[name] = {
            **precision_recall(flagged, expected),
            "by_kind": by_kind,
            "excerpt": {
                **precision_recall(excerpt_flags[name], excerpt_expected),
                "false_alarms": int((excerpt_flags[name] & ~excerpt_expected).sum()),
            },
        }
    return results


def precision_recall(flagged: np.ndarray, expected: np.ndarray) -> dict:
    hits = int((flagged & expected).sum())
    return {
        "labelled": int(expected.sum()),
        "flagged": int(flagged.sum()),
        "true_positive": hits,
        "precision": round(hits / flagged.sum(), 3) if flagged.sum() else None,
        "recall": round(hits / expected.sum(), 3) if expected.sum() else None,
    }


# -- mojibake -------------------------------------------------------------------------------------


def mojibake_cases(seed: int = 0) -> pd.DataFrame:
    """Texts with the clean original each should repair to: damaged once, twice, with U+FFFD, and correct ones."""
    randomness = random.Random(seed)
    words = [
        word
        for text in load_shipped_dolly_excerpt()["response"]
        for word in quality.clean_text(text).split()
        if word.isascii()
    ]
    rows = []
    for index in range(600):
        chosen = randomness.sample(ACCENTED, k=randomness.randint(1, 3))
        sentence = " ".join(randomness.sample(words, k=8) + chosen + randomness.sample(words, k=4))
        kind = ("read as Windows-1252 once", "read as Windows-1252 twice", "U+FFFD (lost)", "correct text")[index % 4]
        if kind == "read as Windows-1252 once":
            damaged = sentence.encode("utf-8").decode("cp1252", errors="replace")
        elif kind == "read as Windows-1252 twice":
            damaged = (
                sentence.encode("utf-8")
                .decode("cp1252", errors="replace")
                .encode("utf-8")
                .decode("cp1252", errors="replace")
            )
        elif kind == "U+FFFD (lost)":
            damaged = sentence.replace(chosen[0], "\ufffd", 1)
        else:
            damaged = sentence
        rows.append({"text": damaged, "original": sentence, "damaged": kind != "correct text", "kind": kind})
    for text in ("SÃO PAULO is the largest city", "The word ÂGE is French", "Zürich, Ångström and São Paulo"):
        rows.append({"text": text, "original": text, "damaged": False, "kind": "correct text that looks close"})
    return pd.DataFrame(rows)


def mojibake_quality() -> dict:
    import ftfy

    cases = mojibake_cases()
    expected = cases["damaged"].to_numpy()
    methods = {
        # The repair the pipeline proposes: clean_text, which repeats the repair until nothing changes.
        "ours (cp1252 round trip of runs, U+FFFD)": (
            lambda text: bool(quality.mojibake_runs(text)),
            quality.clean_text,
        ),
        "ftfy.fix_encoding": (lambda text: ftfy.fix_encoding(text) != text or "\ufffd" in text, ftfy.fix_encoding),
    }
    excerpt = [
        text
        for row in load_shipped_dolly_excerpt().to_dict("records")
        for text in (row["instruction"], row["context"], row["response"])
    ]
    results = {}
    for name, (detect, repair) in methods.items():
        flagged = np.array([detect(text) for text in cases["text"]])
        repaired = [repair(text) for text in cases["text"]]
        by_kind = {}
        for kind, rows in cases.groupby("kind").groups.items():
            rows = np.asarray(rows)
            by_kind[kind] = {
                "records": len(rows),
                "flagged": int(flagged[rows].sum()),
                "repaired_exactly": int(sum(repaired[row] == cases["original"].iat[row] for row in rows)),
            }
        results[name] = {**precision_recall(flagged, expected), "by_kind": by_kind,
                         "excerpt_false_alarms": int(sum(detect(text) for text in excerpt))}  # fmt: skip
    return results


# -- near duplicates ------------------------------------------------------------------------------


def near_duplicate_cases(originals: int = 400, seed: int = 0) -> tuple[list[str], list[str], dict[int, float]]:
    """Distinct generated texts, then for each a copy with a share of its words replaced; the rate of each copy."""
    from dolly_generator import dolly_shaped_frame

    randomness = random.Random(seed)
    frame = dolly_shaped_frame(originals * 3, seed=seed)
    texts = [f"{instruction}\n{response}" for instruction, response in zip(frame["instruction"], frame["response"])]
    texts = [text for text in texts if len(text.split()) >= 20][:originals]
    vocabulary = [word for text in texts for word in text.split()]
    copies, rates = [], {}
    for index, text in enumerate(texts):
        rate = EDIT_RATES[index % len(EDIT_RATES)]
        words = text.split()
        for position in randomness.sample(range(len(words)), int(round(len(words) * rate))):
            words[position] = randomness.choice(vocabulary) + "x"  # a word the text did not have
        copies.append(" ".join(words))
        rates[len(texts) + index] = rate
    return texts + copies, [str(index) for index in range(2 * len(texts))], rates


def exact_jaccard(left: str, right: str) -> float:
    return quality.jaccard(*(np.unique(_shingles(text)) for text in (left, right)))


def _shingles(text: str) -> np.ndarray:
    words = quality._Words.of([text])
    features = quality.DuplicateFeatures.of(words.hashes, words.starts, words.counts, [None])
    return features.shingles


def ours_near_duplicates(texts: list[str], ids: list[str]) -> tuple[set[int], np.ndarray]:
    """Rows grouped with another, and per row its band keys (for the candidate check)."""
    groups = quality.duplicate_groups(ids, texts)
    words = quality._Words.of(texts)
    keys = quality.DuplicateFeatures.of(words.hashes, words.starts, words.counts, [None] * len(texts)).band_keys
    return groups, keys


class Datasketch:
    """MinHash per record and MinHashLSH at the threshold, then the exact Jaccard check ours uses too."""

    def __init__(self, permutations: int = 128, threshold: float = quality.NEAR_DUPLICATE_JACCARD):
        from datasketch import MinHashLSH

        self.permutations, self.threshold = permutations, threshold
        self.lsh = MinHashLSH(threshold=threshold, num_perm=permutations)
        self.bands, self.rows = self.lsh.b, self.lsh.r

    def candidates(self, texts: list[str]) -> list[tuple[int, int]]:
        from datasketch import MinHash

        pairs = []
        for index, text in enumerate(texts):
            words = quality.word_tokens(text)
            shingles = [b" ".join(words[start : start + 3]) for start in range(max(len(words) - 2, 1))] if words else []
            signature = MinHash(num_perm=self.permutations)
            signature.update_batch(shingles)
            pairs += [(other, index) for other in self.lsh.query(signature)]
            self.lsh.insert(index, signature)
        return pairs

    def groups(self, texts: list[str]) -> list[int]:
        parent = list(range(len(texts)))

        def root(index: int) -> int:
            while parent[index] != index:
                parent[index] = parent[parent[index]]
                index = parent[index]
            return index

        for left, right in self.candidates(texts):
            if root(left) != root(right) and exact_jaccard(texts[left], texts[right]) >= self.threshold:
                parent[max(root(left), root(right))] = min(root(left), root(right))
        return [root(index) for index in range(len(texts))]


def near_duplicate_quality() -> dict:
    texts, ids, rates = near_duplicate_cases()
    originals = len(texts) // 2
    similarity = {copy: exact_jaccard(texts[copy - originals], texts[copy]) for copy in rates}
    ours_groups, keys = ours_near_duplicates(texts, ids)
    ours_found = {
        copy
        for copy in rates
        if ours_groups["duplicate_group"].iat[copy] == ours_groups["duplicate_group"].iat[copy - originals] != ""
    }
    ours_candidates = {copy for copy in rates if (keys[copy] == keys[copy - originals]).any()}
    sketch = Datasketch()
    sketch_roots = sketch.groups(texts)
    sketch_found = {copy for copy in rates if sketch_roots[copy] == sketch_roots[copy - originals]}
    sketch_pairs = set(Datasketch().candidates(texts))
    sketch_candidates = {copy for copy in rates if (copy - originals, copy) in sketch_pairs}
    by_rate = {}
    for rate in EDIT_RATES:
        copies = [copy for copy, copy_rate in rates.items() if copy_rate == rate]
        by_rate[f"{rate:.0%}"] = {
            "pairs": len(copies),
            "mean_jaccard": round(float(np.mean([similarity[copy] for copy in copies])), 3),
            "ours": round(sum(copy in ours_found for copy in copies) / len(copies), 3),
            "datasketch": round(sum(copy in sketch_found for copy in copies) / len(copies), 3),
        }
    bins = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 1.01)]
    curve = []
    for low, high in bins:
        copies = [copy for copy in rates if low <= similarity[copy] < high]
        if not copies:
            continue
        middle = float(np.mean([similarity[copy] for copy in copies]))
        curve.append({
            "jaccard": f"{low:.1f}-{min(high, 1.0):.1f}", "pairs": len(copies), "mean_jaccard": round(middle, 3),
            "ours_expected": round(1 - (1 - middle**quality.ROWS_PER_BAND) ** quality.LSH_BANDS, 3),
            "ours_candidates": round(sum(copy in ours_candidates for copy in copies) / len(copies), 3),
            "ours_grouped": round(sum(copy in ours_found for copy in copies) / len(copies), 3),
            "datasketch_expected": round(1 - (1 - middle**sketch.rows) ** sketch.bands, 3),
            "datasketch_candidates": round(sum(copy in sketch_candidates for copy in copies) / len(copies), 3),
            "datasketch_grouped": round(sum(copy in sketch_found for copy in copies) / len(copies), 3),
        })  # fmt: skip
    false_groups = {
        "ours": int(
            sum(ours_groups["duplicate_group"].iat[index] != "" for index in range(originals)) - len(ours_found)
        ),
        "datasketch": int(
            sum(sketch_roots.count(sketch_roots[index]) > 1 for index in range(originals)) - len(sketch_found)
        ),
    }
    return {"by_edit_rate": by_rate, "s_curve": curve, "originals_grouped_without_their_copy": false_groups,
            "ours_bands_rows": [quality.LSH_BANDS, quality.ROWS_PER_BAND], "datasketch_bands_rows": [sketch.bands, sketch.rows]}  # fmt: skip


# -- time -----------------------------------------------------------------------------------------


def timed(work, records: int, full: int, budget: float) -> dict:
    """Seconds of `work(n)` at `full` records; timed on SAMPLE_RECORDS and scaled when the full size would pass `budget`."""
    started = time.perf_counter()
    work(min(SAMPLE_RECORDS, full))
    sample_seconds = time.perf_counter() - started
    estimate = sample_seconds * full / min(SAMPLE_RECORDS, full)
    if full <= SAMPLE_RECORDS or estimate > budget:
        return {"seconds": round(estimate, 1), "scaled_from": min(SAMPLE_RECORDS, full)}
    started = time.perf_counter()
    work(full)
    return {"seconds": round(time.perf_counter() - started, 1)}


def time_methods(size: int, budget: float) -> dict:
    import ftfy
    from dolly_generator import dolly_shaped_frame

    frame = dolly_shaped_frame(size)
    instructions, contexts, responses = (frame[column].tolist() for column in ("instruction", "context", "response"))
    categories = frame["category"].tolist()
    lingua_high, lingua_low = Lingua(low_accuracy=False), Lingua(low_accuracy=True)

    def our_language(count: int) -> None:  # the flag's own cost in the pipeline: the chunk work with it, less without
        for language in ("en", "xx"):
            for start in range(0, count, quality.CHUNK_RECORDS):
                end = min(start + quality.CHUNK_RECORDS, count)
                chunk = (instructions[start:end], contexts[start:end], responses[start:end], categories[start:end])
                with_or_without[language] -= time.perf_counter()
                quality._analyse_chunk(chunk, language)
                with_or_without[language] += time.perf_counter()

    with_or_without = {"en": 0.0, "xx": 0.0}
    our_language(min(size, 200_000))
    ours_language = (with_or_without["en"] - with_or_without["xx"]) * size / min(size, 200_000)
    texts = [f"{instruction} {response}" for instruction, response in zip(instructions, responses)]
    every_text = instructions + contexts + responses
    return {
        "records": size,
        "language": {
            "ours (function words, Latin share)": {"seconds": round(ours_language, 1),
                                                   "scaled_from": min(size, 200_000), "how": "chunk work with the flag minus without"},
            "lingua, high accuracy": timed(lambda n: lingua_high.detector.detect_languages_in_parallel_of(texts[:n]), size, size, budget),
            "lingua, low accuracy": timed(lambda n: lingua_low.detector.detect_languages_in_parallel_of(texts[:n]), size, size, budget),
            "ours, lingua (low) where unsure": timed(
                lambda n: lingua_low.detector.detect_languages_in_parallel_of([text for text in texts[:n] if _unsure(text)]), size, size, budget
            ),
        },
        "unsure_share": round(sum(_unsure(text) for text in texts[:SAMPLE_RECORDS]) / min(size, SAMPLE_RECORDS), 4),
        "mojibake": {
            "ours (cp1252 round trip of runs, U+FFFD)": timed(lambda n: [quality.mojibake_runs(text) for text in every_text[: 3 * n]], size, size, budget),
            "ftfy.fix_encoding": timed(lambda n: [ftfy.fix_encoding(text) for text in every_text[: 3 * n]], size, size, budget),
        },
        "near_duplicates": {
            "ours (MinHash 64, LSH 32x2, exact Jaccard)": timed(
                lambda n: quality.duplicate_groups([str(index) for index in range(n)], [f"{i}\n{r}" for i, r in zip(instructions[:n], responses[:n])]),
                size, size, budget),
            "datasketch (MinHash 128, MinHashLSH, exact Jaccard)": timed(
                lambda n: Datasketch().groups([f"{i}\n{r}" for i, r in zip(instructions[:n], responses[:n])]), size, size, budget),
        },
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[150_000, 1_000_000])
    parser.add_argument(
        "--budget",
        type=float,
        default=240,
        help="seconds a method may take at a size before it is scaled up from a sample",
    )
    parser.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    timestamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = arguments.out or RESULTS_DIR / f"library-{timestamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    report = {
        "timestamp": timestamp,
        "command": " ".join(["python bench/library_comparison.py", *sys.argv[1:]]),
        "machine": {
            "cores": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_average": [round(value, 2) for value in os.getloadavg()],
        },
        "versions": {name: version(name) for name in ("lingua-language-detector", "ftfy", "datasketch")},
        "language": language_quality(),
        "mojibake": mojibake_quality(),
        "near_duplicates": near_duplicate_quality(),
        "time": [],
    }
    out.write_text(json.dumps(report, indent=1))
    print_quality(report)
    for size in arguments.sizes:
        report["time"].append(
            {**time_methods(size, arguments.budget), "load_average": [round(value, 2) for value in os.getloadavg()]}
        )
        out.write_text(json.dumps(report, indent=1))
        print(json.dumps(report["time"][-1]), flush=True)
    print(f"written: {out}")


def print_quality(report: dict) -> None:
    print("\n## Language (other_language: instruction + response not English)\n")
    print(
        "| method | precision | recall | "
        + " | ".join(next(iter(report["language"].values()))["by_kind"])
        + " | excerpt false alarms |"
    )
    print("| --- | ---: | ---: |" + " ---: |" * (len(next(iter(report["language"].values()))["by_kind"]) + 1))
    for name, figures in report["language"].items():
        kinds = " | ".join(f"{value['flagged']}/{value['records']}" for value in figures["by_kind"].values())
        print(
            f"| {name} | {figures['precision']} | {figures['recall']} | {kinds} | {figures['excerpt']['false_alarms']} |"
        )
    print("\n## Mojibake\n")
    for name, figures in report["mojibake"].items():
        kinds = "; ".join(
            f"{kind}: flagged {value['flagged']}/{value['records']}, repaired {value['repaired_exactly']}"
            for kind, value in figures["by_kind"].items()
        )
        print(
            f"- {name}: precision {figures['precision']}, recall {figures['recall']}; {kinds}; excerpt false alarms {figures['excerpt_false_alarms']}"
        )
    print("\n## Near duplicates: share of copies grouped with their original, by share of words replaced\n")
    for rate, figures in report["near_duplicates"]["by_edit_rate"].items():
        print(
            f"- {rate} (mean Jaccard {figures['mean_jaccard']}): ours {figures['ours']}, datasketch {figures['datasketch']}"
        )
    print("\nS-curve:", json.dumps(report["near_duplicates"]["s_curve"], indent=1))


if __name__ == "__main__":
    main()
