"""Generate a deterministic chat fine-tuning corpus for benchmarks (mixed Japanese and English).

    python bench/make_corpus.py --mb 120            # ~/.cache/finetune_hub/bench/chat_corpus_120mb.jsonl
    python bench/make_corpus.py --mb 1 out.jsonl    # any path
    python bench/make_corpus.py --mb 120 --force    # regenerate even if the file is there

Each line is ``{"messages": [system, user, assistant, (user, assistant)...]}``. Record sizes follow
a log-normal law (about 2.5 KB on average, median about 1.8 KB, a long tail cut at 30 KB); about a
third of the records have extra user/assistant turns. Each record is English, Japanese, or mixed
per message; the text is drawn (seeded) from pools of sentences built from word lists, hand-written
Japanese sentences and random kana/kanji runs, with paragraphs, bullet lists, numbers and the odd
code block. The same `--mb` and `--seed` give the same bytes. An existing file of the right size
is reused (the file is written to a temporary name and renamed when complete). Sizes are in
10^6 bytes. Never write the corpus inside the repository.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
from pathlib import Path

import orjson

CACHE_DIR = Path("~/.cache/finetune_hub/bench").expanduser()
MB = 1_000_000
MAX_RECORD_BYTES = 30_000
_MEAN_RECORD_BYTES = 2_500
_SIGMA = 0.8
_MU = math.log(_MEAN_RECORD_BYTES) - _SIGMA**2 / 2

# -- vocabularies -------------------------------------------------------------------------------
_EN_WORDS = """
the a an of to and in for on with as by at from that this these those it its is are was were be
been being have has had do does did can could will would should may might must not no yes all any
each every some many much more most few less least other another such only own same so than too
very just also still even again once here there when where why how what which who whom whose
data model training example examples record records file files token tokens limit limits value
values user assistant system message messages reply answer question prompt prompts context
format formats field fields error errors warning warnings check checks rule rules provider job
jobs epoch epochs batch batches rate learning loss validation test split splits budget cost time
fast slow large small long short simple complex clear exact estimate number numbers count counts
read write parse load save upload download run runs start stop wait retry fail fails succeed
customer order orders invoice shipping delivery refund account password login email address
weather city train station airport hotel room price ticket booking schedule meeting calendar
report summary document policy contract section paragraph sentence word words language
translate translation japanese english tokyo osaka kyoto spring summer autumn winter morning
evening night today tomorrow yesterday week month year please thanks sorry hello help need want
know think see look make take give find tell ask use work call try keep let begin seem show hear
play move live believe bring happen provide sit stand lose pay meet include continue set learn
change lead understand watch follow create speak allow add spend grow open walk win offer remember
consider appear buy serve die send expect build stay fall cut reach kill remain suggest raise pass
sell require decide return explain hope develop carry break receive agree support hit produce eat
cover catch draw choose cause point list table chart graph server client request response header
function method class object string integer float boolean array dictionary queue stack graph
""".split()  # noqa: SIM905  (word lists read better as text)

_EN_CAPS = ["Please", "However", "First", "Next", "Finally", "Also", "Note", "In short",
            "For example", "Yes", "No", "Thanks", "Sure", "Unfortunately", "Of course", "Then"]

_JA_SENTENCES = """
本日はお問い合わせいただきありがとうございます。
ご注文の商品は明日発送される予定です。
申し訳ございませんが、その件については確認が必要です。
東京駅から京都駅までは新幹線で約二時間十五分かかります。
この文書の要約を三行で作成してください。
学習データの形式が正しいかどうかを確認します。
トークン数の上限を超えた例は学習時に切り詰められます。
検証用のファイルは任意ですが、用意することをおすすめします。
会議は来週の火曜日の午後三時から始まります。
パスワードを再設定するには、登録済みのメールアドレスを入力してください。
天気予報によると、明日は晴れ時々くもりでしょう。
この関数は文字列を受け取り、整数を返します。
返品の手続きは商品到着後十四日以内にお願いいたします。
私はプログラミングを勉強しています。
日本語と英語が混ざった文章も正しく数える必要があります。
詳しくは利用規約の第三条をご覧ください。
お支払い方法はクレジットカードと銀行振込からお選びいただけます。
大阪の夏はとても暑くて湿度が高いです。
春には桜が咲き、多くの人が花見を楽しみます。
モデルの出力が期待どおりでない場合は、例を増やしてください。
エラーが発生した行番号とフィールド名を表示します。
ファイルは一行に一つのJSONオブジェクトを含む必要があります。
ご不明な点がございましたら、お気軽にお問い合わせください。
この質問には簡潔に答えてください。
以下の手順に従って設定を完了してください。
""".split()  # noqa: SIM905  (word lists read better as text)

_JA_NOUNS = """
データ 学習 モデル 例 記録 ファイル 形式 上限 確認 質問 回答 文章 要約 翻訳 日本語 英語 会議 予定
天気 電車 駅 空港 ホテル 部屋 料金 予約 注文 商品 配送 返品 支払い 口座 住所 名前 電話 番号 時間
今日 明日 昨日 週末 毎日 午前 午後 仕事 会社 学校 先生 学生 友達 家族 子供 手順 設定 画面 機能 問題
結果 理由 方法 説明 内容 情報 資料 報告 計画 目標 価格 品質 顧客 担当者 東京 大阪 京都 北海道 沖縄
""".split()  # noqa: SIM905  (word lists read better as text)
_JA_PARTICLES = ["は", "が", "を", "に", "で", "と", "の", "から", "まで", "も", "へ"]
_JA_ENDINGS = ["です。", "ます。", "でした。", "しました。", "してください。", "があります。",
               "ではありません。", "を確認しました。", "になります。", "でしょうか。", "と思います。"]
_HIRAGANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだでどばびぶべぼぱぴぷぺぽゃゅょっ"
_KATAKANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴザジズゼゾダデドバビブベボパピプペポャュョッー"
_KANJI = ("日一国会人年大十二本中長出三同時政事自行社見月分議後前民生連五発間対上部東者党地合市業内相方"
          "四定今回新場金員九入選立開手米力学問高代明実円関決子動京全目表戦経通外最言氏現理調体化田当八"
          "六約主題下首意法不来作性的要用制治度務強気小七成期公持野協取都和統以機平総加山思家話世受区領多"
          "県続進正安設保改数記院女初北午指権心界支第産結百派点教報済書府活原先共得解名交資予川向際査勝面"
          "委告軍文反元重近千考判認画海参売利組知案道信策集在件団別物側任引使求所次水半品昨論計死官増係感"
          "特情投示変打男基私各始島直両朝革価式確村提運終挙果西勢減台広容必応演電歳住争談能無再位置企真流")

_CODE = [
    "```python\ndef count(texts):\n    return [len(t) for t in texts]\n```",
    "```json\n{\"role\": \"user\", \"content\": \"hello\"}\n```",
    "```bash\npython -m pip install finetune-hub\n```",
    "```sql\nSELECT id, name FROM users WHERE active = 1 ORDER BY id;\n```",
]
_SYSTEM_EN = [
    "You are a helpful assistant.",
    "You are a customer support agent for an online shop. Answer politely and briefly.",
    "You are a translator between Japanese and English. Keep the tone of the original.",
    "You are a coding assistant. Prefer short, correct examples.",
    "You summarise documents for busy readers.",
]
_SYSTEM_JA = [
    "あなたは親切なアシスタントです。",
    "あなたはオンラインショップのカスタマーサポート担当者です。丁寧に、簡潔に答えてください。",
    "あなたは日本語と英語の翻訳者です。原文の調子を保ってください。",
    "あなたは要約の専門家です。要点を三つにまとめてください。",
]


def _en_sentence(rng: random.Random) -> str:
    words = rng.choices(_EN_WORDS, k=rng.randint(5, 22))
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), str(rng.randint(0, 99_999)))
    if rng.random() < 0.05:
        words.insert(rng.randrange(len(words)), rng.choice(_JA_NOUNS))
    first = rng.choice(_EN_CAPS) + "," if rng.random() < 0.2 else words.pop(0).capitalize()
    return first + " " + " ".join(words) + rng.choice(".....?!:")


def _run(rng: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(lo, hi)))


def _ja_sentence(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.25:
        return rng.choice(_JA_SENTENCES)
    parts = []
    for _ in range(rng.randint(1, 4)):
        x = rng.random()
        if x < 0.6:
            parts.append(rng.choice(_JA_NOUNS))
        elif x < 0.75:
            parts.append(_run(rng, _KANJI, 1, 4))
        elif x < 0.9:
            parts.append(_run(rng, _KATAKANA, 2, 6))
        else:
            parts.append(_run(rng, _HIRAGANA, 2, 6))
        parts.append(rng.choice(_JA_PARTICLES))
    if rng.random() < 0.1:
        parts.append(str(rng.randint(1, 9999)) + rng.choice(["円", "件", "人", "日", "時"]))
    parts.append(rng.choice(_JA_ENDINGS))
    return "".join(parts)


class _Pool:
    """Sentences with their UTF-8 sizes, drawn with replacement."""

    def __init__(self, sentences: list[str]) -> None:
        self.sentences = sentences
        self.mean_bytes = sum(len(s.encode()) for s in sentences) / len(sentences)


class CorpusGenerator:
    """Deterministic record stream for one seed."""

    def __init__(self, seed: int = 0, pool_size: int = 20_000) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.en = _Pool([_en_sentence(rng) for _ in range(pool_size)])
        self.ja = _Pool([_ja_sentence(rng) for _ in range(pool_size)])

    def _text(self, nbytes: int, lang: str) -> str:
        rng = self.rng
        if lang == "mixed":
            lang = "ja" if rng.random() < 0.5 else "en"
            mixed = True
        else:
            mixed = False
        pool, other = (self.ja, self.en) if lang == "ja" else (self.en, self.ja)
        k = max(1, round(nbytes / pool.mean_bytes))
        sentences = rng.choices(pool.sentences, k=k)
        if mixed:
            for _ in range(max(1, k // 3)):
                sentences[rng.randrange(k)] = rng.choice(other.sentences)
        sep = "" if lang == "ja" else " "
        out: list[str] = []
        i = 0
        while i < k:
            n = rng.randint(2, 6)
            chunk = sentences[i : i + n]
            i += n
            style = rng.random()
            if style < 0.12 and len(chunk) > 1:
                out.append("\n".join(f"{j + 1}. {s}" if lang == "en" else f"- {s}" for j, s in enumerate(chunk)))
            else:
                out.append(sep.join(chunk))
            if lang == "en" and rng.random() < 0.03:
                out.append(rng.choice(_CODE))
        return "\n\n".join(out)

    def record(self) -> dict:
        rng = self.rng
        size = min(MAX_RECORD_BYTES, max(200, int(rng.lognormvariate(_MU, _SIGMA))))
        x = rng.random()
        lang = "en" if x < 0.4 else "ja" if x < 0.75 else "mixed"
        turns = 1 if rng.random() < 0.65 else rng.randint(2, 4)
        system = rng.choice(_SYSTEM_JA if lang == "ja" else _SYSTEM_EN)
        if rng.random() < 0.3:
            system = system + (" " if lang != "ja" else "") + self._text(rng.randint(60, 400), lang)
        body = max(100, size - len(system.encode()) - 60 * turns)
        messages = [{"role": "system", "content": system}]
        per_turn = body / turns
        for _ in range(turns):
            user_share = rng.uniform(0.15, 0.5)
            messages.append({"role": "user", "content": self._text(int(per_turn * user_share), lang)})
            messages.append({"role": "assistant", "content": self._text(int(per_turn * (1 - user_share)), lang)})
        return {"messages": messages}

    def write(self, f, target_bytes: int) -> tuple[int, int]:
        """Write records to binary file `f` until `target_bytes`; return (records, bytes)."""
        dumps = orjson.dumps
        written = records = 0
        buf: list[bytes] = []
        pending = 0
        while written + pending < target_bytes:
            line = dumps(self.record()) + b"\n"
            buf.append(line)
            pending += len(line)
            records += 1
            if pending >= 4 * MB:
                f.write(b"".join(buf))
                written += pending
                buf.clear()
                pending = 0
        f.write(b"".join(buf))
        written += pending
        return records, written


def default_path(mb: float, seed: int = 0) -> Path:
    tail = f"_s{seed}" if seed else ""
    return CACHE_DIR / f"chat_corpus_{mb:g}mb{tail}.jsonl"


def is_complete(path: Path, mb: float) -> bool:
    """Whether `path` looks like a finished corpus of `mb` (size in [target, target + 1 record])."""
    target = int(mb * MB)
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return target <= size <= target + MAX_RECORD_BYTES + 4096


def ensure_corpus(path: str | os.PathLike[str] | None = None, mb: float = 120, *, seed: int = 0, force: bool = False, quiet: bool = True) -> Path:
    """Create the corpus at `path` (default under ~/.cache) unless a complete one is there."""
    p = Path(path).expanduser() if path else default_path(mb, seed)
    if not force and is_complete(p, mb):
        if not quiet:
            print(f"reusing {p} ({p.stat().st_size / MB:.1f} MB)", file=sys.stderr)
        return p
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            records, written = CorpusGenerator(seed).write(f, int(mb * MB))
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    if not quiet:
        print(f"wrote {p}: {records:,} records, {written / MB:.1f} MB", file=sys.stderr)
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", nargs="?", help="output file (default: ~/.cache/finetune_hub/bench/chat_corpus_<mb>mb.jsonl)")
    ap.add_argument("--mb", type=float, default=120, help="target size in MB (10^6 bytes); default 120")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="regenerate even if a complete file exists")
    args = ap.parse_args(argv)
    path = ensure_corpus(args.path, args.mb, seed=args.seed, force=args.force, quiet=False)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
