"""parse_associations on what real chat models write (English and Chinese), hand-checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from lexalign.core.text import normalise_text
from lexalign.lexical.parse import parse_associations

# (id, lang, cue, model text, expected words)
CASES = [
    # ---------------------------------------------------------------- English
    (
        "en-plain-commas",
        "en",
        "dog",
        "puppy, bark, leash, bone, cat, pet, tail, walk",
        ["puppy", "bark", "leash", "bone", "cat", "pet", "tail", "walk"],
    ),
    (
        "en-capitalised-period",
        "en",
        "dog",
        "Puppy, Bark, Leash, Bone, Loyal.",
        ["puppy", "bark", "leash", "bone", "loyal"],
    ),
    (
        "en-preamble-colon-newline",
        "en",
        "dog",
        'Sure! Here are 45 words associated with "dog":\n\npuppy, bark, leash, bone, fetch, tail',
        ["puppy", "bark", "leash", "bone", "fetch", "tail"],
    ),
    (
        "en-preamble-same-line",
        "en",
        "dog",
        'Here are some words that come to mind when I read the word "dog": puppy, bark, leash, bone.',
        ["puppy", "bark", "leash", "bone"],
    ),
    (
        "en-numbered-list",
        "en",
        "dog",
        "Here are 40 words associated with dog:\n\n1. Puppy\n2. Bark\n3. Leash\n4. Bone\n5. Fetch\n6. Collar\n7. "
        "Kennel\n8. Paw\n9. Tail\n10. Loyal",
        ["puppy", "bark", "leash", "bone", "fetch", "collar", "kennel", "paw", "tail", "loyal"],
    ),
    (
        "en-numbered-paren",
        "en",
        "bread",
        "1) Butter\n2) Toast\n3) Wheat\n4) Loaf\n5) Bakery",
        ["butter", "toast", "wheat", "loaf", "bakery"],
    ),
    (
        "en-bullets-dash-star",
        "en",
        "winter",
        "- snow\n- cold\n* ice\n* scarf\n• hot chocolate\n• sled",
        ["snow", "cold", "ice", "scarf", "hot chocolate", "sled"],
    ),
    ("en-markdown-bold-items", "en", "dog", "1. **Puppy**\n2. **Bark**\n3. **Leash**", ["puppy", "bark", "leash"]),
    (
        "en-bold-explanations",
        "en",
        "dog",
        "1. **Loyalty**: Dogs are known for their loyalty to their owners, and they stay by your side.\n"
        "2. **Bark** - the sound a dog makes\n3. **Fetch**: a game played with a ball",
        ["loyalty", "bark", "fetch"],
    ),
    (
        "en-category-headings",
        "en",
        "dog",
        'Here are some words associated with "dog":\n\n**Animals:**\n1. Puppy\n2. Canine\n\n**Actions:**\n- Bark\n- '
        "Fetch\n\n"
        "### Objects\n* Leash\n* Bone",
        ["puppy", "canine", "bark", "fetch", "leash", "bone"],
    ),
    (
        "en-category-lines",
        "en",
        "dog",
        "Pets: cat, hamster, rabbit\nActions: bark, fetch, wag\nFood: bone, treat",
        ["cat", "hamster", "rabbit", "bark", "fetch", "wag", "bone", "treat"],
    ),
    (
        "en-trailing-note",
        "en",
        "dog",
        "puppy, bark, leash, bone, fetch\n\nNote: I've tried to include a broad range of associations without "
        "repeating myself.",
        ["puppy", "bark", "leash", "bone", "fetch"],
    ),
    (
        "en-trailing-chat",
        "en",
        "sun",
        "hot, bright, summer, moon, sky, light\n\nLet me know if you'd like more words!\nI hope this helps.",
        ["hot", "bright", "summer", "moon", "sky", "light"],
    ),
    (
        "en-note-same-line",
        "en",
        "sun",
        "hot, bright, summer, moon. Note: some of these are less common.",
        ["hot", "bright", "summer", "moon"],
    ),
    ("en-quotes", "en", "dog", '"puppy", "bark", \'leash\', “bone”, ‘paw’', ["puppy", "bark", "leash", "bone", "paw"]),
    (
        "en-repeated-cue-echo",
        "en",
        "dog",
        "Dog: puppy, bark, dog, leash, Dog, bone",
        ["puppy", "bark", "leash", "bone"],
    ),
    ("en-cue-label-lines", "en", "dog", "Cue: dog\nAssociations: puppy, bark, leash", ["puppy", "bark", "leash"]),
    (
        "en-dedupe-keep-order",
        "en",
        "cat",
        "kitten, meow, Kitten, MEOW, purr, kitten , purr.",
        ["kitten", "meow", "purr"],
    ),
    (
        "en-degenerate-repeat",
        "en",
        "cat",
        "kitten, kitten, kitten, kitten, kitten, kitten, kitten, kitten, kitten",
        ["kitten"],
    ),
    (
        "en-trailing-end-of-turn",
        "en",
        "dog",
        "puppy, bark, leash<end_of_turn>\n<start_of_turn>user\nmore",
        ["puppy", "bark", "leash"],
    ),
    ("en-trailing-eot-and-eos", "en", "dog", "puppy, bark, leash, bone<|eot_id|>", ["puppy", "bark", "leash", "bone"]),
    ("en-im-end", "en", "dog", "puppy, bark<|im_end|>\n<|im_start|>assistant\npuppy", ["puppy", "bark"]),
    ("en-leading-bos", "en", "dog", "<bos>puppy, bark</s>", ["puppy", "bark"]),
    ("en-empty", "en", "dog", "", []),
    ("en-whitespace-only", "en", "dog", "  \n\n  ", []),
    ("en-only-special", "en", "dog", "<end_of_turn>", []),
    (
        "en-refusal-sentence",
        "en",
        "dog",
        "I'm sorry, but I can't help with that request because it is not clear what you mean.",
        [],
    ),
    ("en-oxford-and-etc", "en", "beach", "sand, waves, sun, and surfing, etc.", ["sand", "waves", "sun", "surfing"]),
    (
        "en-multiword",
        "en",
        "ice",
        "ice cream, cold, hockey, ice skating, frozen water",
        ["ice cream", "cold", "hockey", "ice skating", "frozen water"],
    ),
    (
        "en-hyphen-and-apostrophe",
        "en",
        "dog",
        "man's best friend, t-shirt, hot-dog, dog-walker",
        ["man's best friend", "t-shirt", "hot-dog", "dog-walker"],
    ),
    ("en-parenthesised-gloss", "en", "dog", "puppy (young dog), bark (sound), leash", ["puppy", "bark", "leash"]),
    ("en-chinese-gloss", "en", "food", "pizza（比萨）, noodles / 面条, rice 米饭", ["pizza", "noodles", "rice"]),
    ("en-inline-numbered", "en", "dog", "1. puppy 2. bark 3. leash 4. bone", ["puppy", "bark", "leash", "bone"]),
    ("en-semicolons", "en", "car", "wheels; engine; road; drive; fast", ["wheels", "engine", "road", "drive", "fast"]),
    ("en-one-per-line", "en", "sun", "Hot\nBright\nSummer\nMoon", ["hot", "bright", "summer", "moon"]),
    (
        "en-space-separated",
        "en",
        "sun",
        "hot bright summer moon sky light yellow",
        ["hot", "bright", "summer", "moon", "sky", "light", "yellow"],
    ),
    ("en-fullwidth-latin", "en", "dog", "ｐｕｐｐｙ，ｂａｒｋ", ["puppy", "bark"]),
    (
        "en-think-block",
        "en",
        "dog",
        "<think>The user wants words. Dogs bark.</think>\npuppy, bark, leash",
        ["puppy", "bark", "leash"],
    ),
    ("en-arrow-chain", "en", "dog", "dog -> bone -> meat → butcher", ["bone", "meat", "butcher"]),
    ("en-markdown-table-like", "en", "dog", "| puppy | bark | leash |", ["puppy", "bark", "leash"]),
    # Issue 23: an item without a Latin letter is no English association (Chinese glosses aside, "门 (door)").
    ("en-mixed-script-items", "en", "china", "Beijing, 长城, panda, dragon", ["beijing", "panda", "dragon"]),
    (
        "en-period-ended-preamble",
        "en",
        "dog",
        "Certainly. Here is a list of associated words.\n\nPuppy, bark, leash, bone",
        ["puppy", "bark", "leash", "bone"],
    ),
    ("en-numbers-as-words", "en", "seven", "7, eleven, 24/7, lucky number", ["7", "eleven", "24/7", "lucky number"]),
    ("en-abbreviation", "en", "soda", "Dr. Pepper, Coke, fizzy", ["dr. pepper", "coke", "fizzy"]),
    ("en-json-object", "en", "dog", '{"associations": ["puppy", "bark", "leash"]}', ["puppy", "bark", "leash"]),
    ("en-code-fence", "en", "dog", '```json\n["puppy", "bark"]\n```', ["puppy", "bark"]),
    ("en-dash-separated", "en", "dog", "puppy - bark - leash", ["puppy", "bark", "leash"]),
    ("en-slash-separated", "en", "dog", "puppy / bark / leash / bone", ["puppy", "bark", "leash", "bone"]),
    ("en-emoji-bullets", "en", "dog", "🐶 puppy, 🦴 bone, ✅ walk", ["puppy", "bone", "walk"]),
    ("en-unclosed-gloss", "en", "dog", "puppy, bark (young dog, leash", ["puppy", "bark", "leash"]),
    ("en-and-many-more", "en", "dog", "puppy, bark, leash, and many more.", ["puppy", "bark", "leash"]),
    ("en-ellipsis-separated", "en", "dog", "puppy... bark... leash...", ["puppy", "bark", "leash"]),
    ("en-sentence-not-split-into-words", "en", "dog", "The word dog makes me think of puppy", []),
    ("en-bare-numbers", "en", "dog", "1 puppy\n2 bark\n3 leash", ["puppy", "bark", "leash"]),
    ("en-numbers-kept-in-words", "en", "seven", "7 dwarfs\nsnow white", ["7 dwarfs", "snow white"]),
    (
        "en-and-inside-word-kept",
        "en",
        "and",
        "salt and pepper, bread and butter",
        ["salt and pepper", "bread and butter"],
    ),
    (
        "en-numbered-categories",
        "en",
        "dog",
        "1. **Pets**: cat, hamster, rabbit\n2. **Actions**: bark, fetch",
        ["cat", "hamster", "rabbit", "bark", "fetch"],
    ),
    (
        "en-trailing-summary-sentence",
        "en",
        "dog",
        "puppy\nbark\nleash\n\nThese words are commonly associated with dogs.",
        ["puppy", "bark", "leash"],
    ),
    # ---------------------------------------------------------------- Chinese
    (
        "zh-fullwidth-commas",
        "zh",
        "狗",
        "宠物，忠诚，骨头，朋友，猫，尾巴",
        ["宠物", "忠诚", "骨头", "朋友", "猫", "尾巴"],
    ),
    ("zh-ideographic-comma", "zh", "春节", "饺子、红包、鞭炮、团圆、春晚", ["饺子", "红包", "鞭炮", "团圆", "春晚"]),
    ("zh-fullwidth-semicolon", "zh", "学校", "老师；学生；教室；作业", ["老师", "学生", "教室", "作业"]),
    (
        "zh-preamble-colon",
        "zh",
        "狗",
        "好的，以下是与“狗”相关的联想词：\n宠物，忠诚，骨头，朋友。",
        ["宠物", "忠诚", "骨头", "朋友"],
    ),
    (
        "zh-preamble-same-line",
        "zh",
        "狗",
        "看到“狗”这个词，我会联想到：宠物、忠诚、骨头、朋友",
        ["宠物", "忠诚", "骨头", "朋友"],
    ),
    (
        "zh-numbered",
        "zh",
        "月亮",
        "以下是与“月亮”相关的联想词：\n\n1. 月饼\n2. 中秋\n3. 嫦娥\n4. 夜晚\n5. 星星",
        ["月饼", "中秋", "嫦娥", "夜晚", "星星"],
    ),
    ("zh-numbered-dunhao", "zh", "月亮", "1、月饼\n2、中秋\n3、嫦娥", ["月饼", "中秋", "嫦娥"]),
    ("zh-chinese-numerals", "zh", "月亮", "一、月饼\n二、中秋\n三、嫦娥", ["月饼", "中秋", "嫦娥"]),
    ("zh-circled-numbers", "zh", "月亮", "①月饼 ②中秋 ③嫦娥", ["月饼", "中秋", "嫦娥"]),
    (
        "zh-english-gloss-paren",
        "zh",
        "狗",
        "1. 宠物 (pet)\n2. 忠诚 (loyalty)\n3. 骨头 (bone)",
        ["宠物", "忠诚", "骨头"],
    ),
    # Issue 12: in Chinese output the Chinese gloss of a Latin word is the answer (was "pizza").
    ("zh-pizza-gloss", "zh", "食物", "pizza（比萨），面条，米饭", ["比萨", "面条", "米饭"]),
    ("zh-space-gloss", "zh", "狗", "宠物 pet，忠诚 loyalty，骨头", ["宠物", "忠诚", "骨头"]),
    ("zh-space-separated", "zh", "狗", "宠物 忠诚 骨头 朋友", ["宠物", "忠诚", "骨头", "朋友"]),
    (
        "zh-explanations",
        "zh",
        "狗",
        "1. 宠物：狗是人类最常见的宠物，也是家庭的一员\n2. 忠诚——狗对主人非常忠诚\n3. 骨头",
        ["宠物", "忠诚", "骨头"],
    ),
    (
        "zh-bold-categories",
        "zh",
        "狗",
        "**动物**：猫、兔子、仓鼠\n**行为**：叫、摇尾巴",
        ["猫", "兔子", "仓鼠", "叫", "摇尾巴"],
    ),
    (
        "zh-trailing-note",
        "zh",
        "狗",
        "宠物，忠诚，骨头，朋友\n\n希望这些联想词对你有帮助！",
        ["宠物", "忠诚", "骨头", "朋友"],
    ),
    ("zh-trailing-zhu", "zh", "狗", "宠物，忠诚，骨头\n注：以上词语按联想的紧密程度排列。", ["宠物", "忠诚", "骨头"]),
    ("zh-repeated-cue", "zh", "狗", "狗：宠物，狗，忠诚，狗狗，骨头", ["宠物", "忠诚", "狗狗", "骨头"]),
    (
        "zh-quotes-and-brackets",
        "zh",
        "书",
        "“阅读”，「知识」，《红楼梦》，『图书馆』",
        ["阅读", "知识", "红楼梦", "图书馆"],
    ),
    ("zh-dedupe", "zh", "狗", "宠物，宠物，忠诚，宠物，忠诚", ["宠物", "忠诚"]),
    ("zh-end-of-turn", "zh", "狗", "宠物，忠诚，骨头<end_of_turn>\n<start_of_turn>user", ["宠物", "忠诚", "骨头"]),
    ("zh-mixed-scripts-items", "zh", "手机", "iPhone，华为，微信，APP，T恤", ["iphone", "华为", "微信", "app", "t恤"]),
    ("zh-etc", "zh", "水果", "苹果，香蕉，橙子等等", ["苹果", "香蕉", "橙子"]),
    ("zh-ping-deng-kept", "zh", "权利", "自由，平等，民主", ["自由", "平等", "民主"]),
    (
        "zh-english-answer-to-chinese-prompt",
        "zh",
        "狗",
        'Here are some words associated with "狗" (dog):\n1. 宠物 (pet)\n2. 忠诚 (loyalty)',
        ["宠物", "忠诚"],
    ),
    ("zh-sentence-refusal", "zh", "狗", "抱歉，我无法理解你的问题，请再详细说明一下你的需求。", []),
    ("zh-empty", "zh", "狗", "", []),
    ("zh-inline-numbers-no-space", "zh", "狗", "1.宠物2.忠诚3.骨头", ["宠物", "忠诚", "骨头"]),
    ("zh-last-joined-by-he", "zh", "狗", "宠物、忠诚和骨头", ["宠物", "忠诚", "骨头"]),
    ("zh-he-inside-words-kept", "zh", "和", "和平，温和，共和国", ["和平", "温和", "共和国"]),
    ("zh-ellipsis", "zh", "狗", "宠物……忠诚……", ["宠物", "忠诚"]),
    (
        "zh-summary-after-list",
        "zh",
        "狗",
        "狗的联想词：\n\n1. 宠物\n2. 忠诚\n\n这些词涵盖了狗的各个方面，包括情感和生活。",
        ["宠物", "忠诚"],
    ),
    ("zh-chatter-word-starting-a-list", "zh", "眼", "看到，眼睛，视觉", ["看到", "眼睛", "视觉"]),
    ("zh-fullwidth-space", "zh", "狗", "宠物\u3000忠诚\u3000骨头", ["宠物", "忠诚", "骨头"]),
    # ------------------------------------------------- issue 12: lose no hit (invented, same shapes)
    # A mixed-script list ending in a period.
    ("zh-mixed-script-period", "zh", "一样", "相同，相似，类似，alike.", ["相同", "相似", "类似", "alike"]),
    ("zh-mixed-script-period-dunhao", "zh", "快", "迅速、飞快、speed、急忙.", ["迅速", "飞快", "speed", "急忙"]),
    ("zh-mixed-script-fullstop", "zh", "冷", "冬天，冰，寒冷，snow。", ["冬天", "冰", "寒冷", "snow"]),
    (
        "en-mixed-script-period",
        "en",
        "same",
        "similar, alike, 相同, identical.",
        ["similar", "alike", "identical"],
    ),
    # A stray colon inside the list.
    ("zh-stray-colon", "zh", "花", "树叶、花朵、.':、果实", ["树叶", "花朵", "果实"]),
    ("zh-stray-colon-commas", "zh", "树", "树枝，树叶，:，森林，绿色", ["树枝", "树叶", "森林", "绿色"]),
    ("zh-stray-quote-colon", "zh", "海", '沙滩、海浪、":、贝壳、蓝色', ["沙滩", "海浪", "贝壳", "蓝色"]),
    ("en-stray-colon", "en", "flower", "leaf, petal, :, stem, root", ["leaf", "petal", "stem", "root"]),
    # A Latin word with a Chinese gloss in Chinese output: keep the Chinese.
    ("zh-latin-with-chinese-gloss", "zh", "窗", "window （窗户）", ["窗户"]),
    ("zh-latin-gloss-in-list", "zh", "房子", "door（门），玻璃，roof (屋顶)", ["门", "玻璃", "屋顶"]),
    ("zh-latin-gloss-numbered", "zh", "厨房", "1. kitchen knife （菜刀）\n2. 锅\n3. 碗", ["菜刀", "锅", "碗"]),
    ("en-chinese-with-latin-gloss", "en", "house", "门 (door), roof, 窗户 (window)", ["door", "roof", "window"]),
    # Chinese exclamations or preambles.
    ("zh-exclamation-preamble", "zh", "游戏", "太好了，我们开始吧！\n电脑，娱乐，手机", ["电脑", "娱乐", "手机"]),
    ("zh-exclamation-same-line", "zh", "音乐", "真有意思，我来试试！歌曲，旋律，吉他", ["歌曲", "旋律", "吉他"]),
    ("zh-question-preamble", "zh", "茶", "你想知道我的联想吗？\n绿茶，茶杯，龙井", ["绿茶", "茶杯", "龙井"]),
    ("zh-exclamation-after-list", "zh", "猫", "老鼠，鱼，宠物\n真是可爱的动物呀！", ["老鼠", "鱼", "宠物"]),
    # A special token in the middle of a list.
    ("zh-special-token-mid-list", "zh", "狗", "猫，骨头，3<end_of_turn>，宠物，忠诚", ["猫", "骨头", "宠物", "忠诚"]),
    (
        "en-special-token-mid-list",
        "en",
        "dog",
        "cat, bone<end_of_turn> 4. leash, walk",
        ["cat", "bone", "leash", "walk"],
    ),
    (
        "en-eos-mid-list-numbered",
        "en",
        "sun",
        "1. hot\n2. moon<eos>\n3. summer\n4. light",
        ["hot", "moon", "summer", "light"],
    ),
    ("zh-im-end-mid-list", "zh", "春节", "饺子、红包、<|im_end|>、鞭炮", ["饺子", "红包", "鞭炮"]),
    # Explanation fragments of up to ten characters.
    ("zh-explanation-fragment", "zh", "电视", "节目，遥控器，通常用于娱乐，新闻", ["节目", "遥控器", "新闻"]),
    ("zh-explanation-kind-of", "zh", "水果", "苹果，一种水果，香蕉", ["苹果", "香蕉"]),
    ("zh-explanation-used-for", "zh", "刀", "厨房，用来切菜，锋利，菜板", ["厨房", "锋利", "菜板"]),
    ("zh-explanation-for-example", "zh", "动物", "老虎，比如狮子，熊猫", ["老虎", "熊猫"]),
    # The cue echoed first, and other-script junk ahead of the real items.
    ("en-cue-echo-dash", "en", "dog", "dog - puppy, bark, leash", ["puppy", "bark", "leash"]),
    ("en-cue-echo-period", "en", "dog", "Dog. Puppy, bark, leash", ["puppy", "bark", "leash"]),
    ("zh-cue-echo-dash", "zh", "狗", "狗——猫，骨头，宠物", ["猫", "骨头", "宠物"]),
    ("zh-cue-echo-first", "zh", "狗", "狗，狗，猫，骨头", ["猫", "骨头"]),
    # Issue 23: Latin words are real Chinese answers; ahead of a run-on list they move behind the Chinese ones.
    ("zh-latin-junk-ahead", "zh", "狗", "dog cat animal，猫，骨头，宠物", ["猫", "骨头", "宠物", "dog cat animal"]),
    ("zh-latin-run-ahead", "zh", "猫", "cat，kitten，老鼠，鱼", ["老鼠", "鱼", "cat", "kitten"]),
    ("zh-lone-latin-word-kept", "zh", "篮球", "NBA，篮球场，乔丹", ["nba", "篮球场", "乔丹"]),
    ("en-chinese-junk-ahead", "en", "dog", "狗, 猫, cat, bone, puppy", ["cat", "bone", "puppy"]),
    ("en-cyrillic-junk-ahead", "en", "dog", "собака, cat, bone", ["cat", "bone"]),
]


@pytest.mark.parametrize(("lang", "cue", "text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_realistic_outputs(lang, cue, text, expected):
    assert parse_associations(text, lang, cue=cue) == expected


def test_there_are_enough_hand_written_cases():
    assert sum(1 for c in CASES if c[1] == "en") >= 20
    assert sum(1 for c in CASES if c[1] == "zh") >= 20


def test_output_is_normalised_like_ingest():
    words = parse_associations("Ｈｏｔ  Dog, «Ice  Cream», cAfÉ!", "en")
    assert (
        words == [normalise_text(w) for w in ("Ｈｏｔ  Dog", "Ice  Cream", "cAfÉ")] == ["hot dog", "ice cream", "café"]
    )


def test_truncated_generation_drops_unfinished_last_item():
    assert parse_associations("puppy, bark, leash, bo", "en", truncated=True) == ["puppy", "bark", "leash"]
    assert parse_associations("puppy, bark, leash, bo", "en") == ["puppy", "bark", "leash", "bo"]
    assert parse_associations("宠物，忠诚，骨", "zh", truncated=True) == ["宠物", "忠诚"]
    assert parse_associations("puppy", "en", truncated=True) == ["puppy"]


def test_cue_is_optional():
    assert parse_associations("dog, puppy, bark", "en") == ["dog", "puppy", "bark"]
    assert parse_associations("dog, puppy, bark", "en", cue="Dog") == ["puppy", "bark"]


@pytest.mark.parametrize(
    "junk", [None, 42, "\x00\x01", "<<<>>>", "::::", "1.\n2.\n3.", "*" * 500, "，" * 100, "(" * 50 + ")" * 3]
)
def test_never_raises(junk):
    assert isinstance(parse_associations(junk, "en"), list)
    assert isinstance(parse_associations(junk, "zh"), list)


def test_unknown_language_parses_like_english():
    assert parse_associations("Hund, Katze, Knochen", "de") == ["hund", "katze", "knochen"]


def test_echoed_prompt_is_removed():
    prompt = [
        "You take part in a word-association study.",
        'Which words come to mind when you read the word "heart"? Reply with the words only, separated by commas.',
    ]
    raw = prompt[1] + " love, blood\n" + prompt[0] + "\n" + prompt[1][:60]
    assert parse_associations(raw, "en", cue="heart", echo=prompt, truncated=True) == ["love", "blood"]
    zh = ["看到词语“中文”时，你会联想到哪些词？只回答这些词，用中文逗号“，”分隔。"]
    raw = zh[0] + "汉语，汉字\n看到词语“中文”时，你会联想到哪些词？只回答这些词，用中"
    assert parse_associations(raw, "zh", cue="中文", echo=zh, truncated=True) == ["汉语", "汉字"]


@pytest.mark.parametrize(
    ("lang", "name"), [("en", "SWOW-EN.R100.illustrative.csv"), ("zh", "SWOWZH.R55.illustrative.csv")]
)
def test_clean_human_responses_parse_to_themselves(lang, name):
    """Every ingested response survives the parser unchanged, alone or in a list (both sides match)."""
    from lexalign.norms.ingest import pooled_counts

    pooled, _ = pooled_counts(Path(__file__).resolve().parents[2] / "data" / "illustrative" / name, {"format": "auto"})
    words = pooled["response"].unique().sort().to_list()
    separator = "，" if lang == "zh" else ", "
    for start in range(0, len(words), 50):
        chunk = words[start : start + 50]
        assert parse_associations(separator.join(chunk), lang) == chunk
    assert [w for w in words if parse_associations(w, lang) != [w]] == []
