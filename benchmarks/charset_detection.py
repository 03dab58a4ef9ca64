"""How often extract's decoding returns the text a page was written in, when the page declares
no charset and is not UTF-8 (detection decides), and when it declares one but was cut inside
a character by a crawler's size cap.

    python -m benchmarks.charset_detection [--pages 30] [--seed 0]

Pages: for each language, `--pages` seeded pages of 1-4 repeats of a sample of its sentences
(hand-written here: news-style sentences, the kind of prose a crawl holds), encoded in the
legacy charset the web used for it. A page counts as right when `decode_html` gives back
exactly the page written; the codecs it chose are listed, first for a page with no URL (a
generic domain: the bytes alone decide), then for the page on its country's domain; pages in
a Latin script are also counted on a domain of a country with another Latin code. Cut
pages lose their last byte of a multi-byte charset and must come back in the declared charset
with one U+FFFD. Each page is also declared under the WRONG_LABELS that are not its own:
right when its text comes back all the same (a wrong label that decodes cleanly wins, as in
browsers; the count says how often a page survives one).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter

from curation.http import decode_html, normalise_charset

SENTENCES = {
    "en": (
        "cp1252",
        "The museum café reopened last week after a long renovation. Tickets cost "
        "£12 for adults. She said the résumé had been sent. “We are proud,” the teacher said. "
        "Opening hours are 9am–5pm. Parking is free after six o’clock.",
    ),
    "de": (
        "cp1252",
        "Die Gemeinde hat am Dienstag über den neuen Haushalt beraten. Während des "
        "Festes müssen die Anwohner außerhalb parken. Der Eintritt kostet 12 € für "
        "Erwachsene. „Wir sind stolz“, sagte die Schulleiterin.",
    ),
    "fr": (
        "cp1252",
        "Le conseil municipal s’est réuni mardi. Pendant la fête, les habitants "
        "doivent garer leur voiture à l’extérieur. Le musée a rouvert après une longue "
        "rénovation. « Nous sommes très fiers », a déclaré la directrice. Les élèves ont "
        "présenté leurs œuvres.",
    ),
    "es": (
        "cp1252",
        "El ayuntamiento se reunió el martes. Durante la fiesta, los vecinos deben "
        "aparcar fuera. ¿Cuánto cuesta la entrada? Son 12 € para niños. «Estamos muy "
        "orgullosos», dijo la directora.",
    ),
    "pt": (
        "cp1252",
        "A câmara municipal reuniu-se na terça-feira para discutir o orçamento. O "
        "museu reabriu depois de uma longa renovação. A entrada custa 12 € para crianças e "
        "não há estacionamento.",
    ),
    "pl": (
        "cp1250",
        "Rada miasta zebrała się we wtorek, aby omówić nowy budżet. Podczas święta "
        "mieszkańcy muszą parkować poza centrum. Muzeum zostało ponownie otwarte po długim "
        "remoncie. Bilety kosztują dwanaście złotych.",
    ),
    "cs": (
        "cp1250",
        "Městská rada se sešla v úterý, aby projednala nový rozpočet. Během "
        "slavností musí obyvatelé parkovat mimo centrum. Muzeum bylo znovu otevřeno po "
        "dlouhé rekonstrukci. Vstupenky stojí dvanáct korun.",
    ),
    "hu": (
        "iso8859-2",
        "A városi tanács kedden ülésezett az új költségvetésről. Az ünnep alatt "
        "a lakóknak a központon kívül kell parkolniuk. A múzeum hosszú felújítás után újra "
        "megnyílt. A jegyek tizenkét euróba kerülnek.",
    ),
    "ru": (
        "cp1251",
        "Городской совет собрался во вторник, чтобы обсудить новый бюджет. Во "
        "время праздника жители должны парковаться за пределами центра. Музей вновь "
        "открылся после долгого ремонта. Билеты стоят двенадцать рублей.",
    ),
    "uk": (
        "cp1251",
        "Міська рада зібралася у вівторок, щоб обговорити новий бюджет. Під час "
        "свята мешканці мають паркуватися за межами центру. Музей знову відкрився після "
        "тривалого ремонту. Квитки коштують дванадцять гривень, є знижки.",
    ),
    "ru/koi8": (
        "koi8-r",
        "Городской совет собрался во вторник, чтобы обсудить новый бюджет. "
        "Во время праздника жители должны парковаться за пределами центра. Музей "
        "вновь открылся после долгого ремонта.",
    ),
    "el": (
        "cp1253",
        "Το δημοτικό συμβούλιο συνεδρίασε την Τρίτη για να συζητήσει τον νέο "
        "προϋπολογισμό. Κατά τη διάρκεια της γιορτής οι κάτοικοι πρέπει να σταθμεύουν έξω "
        "από το κέντρο. Το μουσείο άνοιξε ξανά.",
    ),
    "tr": (
        "cp1254",
        "Belediye meclisi yeni bütçeyi görüşmek için salı günü toplandı. Bayram "
        "süresince bölge sakinleri araçlarını şehir merkezinin dışına park etmek zorunda. "
        "Müze uzun bir onarımın ardından yeniden açıldı.",
    ),
    "ja": (
        "cp932",
        "東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。博物館は長い"
        "改修工事の後、先週再開しました。入場料は大人千二百円です。",
    ),
    "ja/euc": (
        "euc_jp",
        "東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。博物館は"
        "長い改修工事の後、先週再開しました。入場料は大人千二百円です。",
    ),
    "ko": (
        "cp949",
        "서울은 대한민국의 수도이며 가장 큰 도시입니다. 박물관은 오랜 보수 공사 끝에 "
        "지난주 다시 문을 열었습니다. 입장료는 성인 만 이천 원입니다.",
    ),
    "zh": (
        "gb18030",
        "北京是中华人民共和国的首都，也是全国的政治和文化中心。博物馆经过长时间的"
        "修缮，上周重新开放。成人门票十二元。",
    ),
    "zh/big5": (
        "big5hkscs",
        "臺北是中華民國的首都，也是全國的政治和文化中心。博物館經過長時間的"
        "修繕，上週重新開放。成人門票十二元。",
    ),
}
# A country whose domain each language's pages sit on, for the undeclared pages on it: the
# domain is what browsers weigh when bytes fit several charsets alike.
COUNTRY = {
    "en": "uk", "de": "de", "fr": "fr", "es": "es", "pt": "br", "pl": "pl", "cs": "cz",
    "hu": "hu", "ru": "ru", "uk": "ua", "ru/koi8": "ru", "el": "gr", "tr": "tr", "ja": "jp",
    "ja/euc": "jp", "ko": "kr", "zh": "cn", "zh/big5": "tw",
}  # fmt: skip
# And a country with another Latin code, for the Latin languages' pages (a Czech page on .de):
# what the domain costs when it misleads.
FOREIGN = {"cp1252": "pl", "cp1250": "de", "iso8859-2": "de", "cp1254": "de"}
# Labels a page may wrongly declare: UTF-8 (a server's default), windows-1252 (a template's),
# Shift_JIS and windows-1251 (another site's copied header).
WRONG_LABELS = ("utf-8", "windows-1252", "Shift_JIS", "windows-1251")
# The labels pages declare the multi-byte charsets by.
MULTI_BYTE = {
    "cp932": "Shift_JIS",
    "euc_jp": "EUC-JP",
    "cp949": "EUC-KR",
    "gb18030": "GBK",
    "big5hkscs": "Big5",
}


def sentences(text: str) -> list[str]:
    return [s for s in text.replace("。", "。|").replace(". ", ".|").split("|") if s]


def pages(text: str, n: int, rng: random.Random) -> list[str]:
    parts = sentences(text)
    out = []
    for _ in range(n):
        body = rng.sample(parts, rng.randint(1, len(parts))) * rng.randint(1, 4)
        paragraphs = "".join(f"<p>{s}</p>" for s in body)
        out.append(f"<html><head><title>Page</title></head><body>{paragraphs}</body></html>")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=30, help="pages per language")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    wrong_total = country_wrong_total = cut_wrong = cut_total = 0
    mislabelled_wrong = mislabelled_total = declared_wrong = 0
    foreign_wrong = foreign_total = 0
    print(f"{'language':10} {'charset':10} undeclared wrong, codecs chosen: no URL | on .tld")
    for language, (charset, text) in SENTENCES.items():
        chosen: Counter[str] = Counter()
        country_chosen: Counter[str] = Counter()
        wrong = country_wrong = 0
        url = f"http://www.example.{COUNTRY[language]}/page"
        for page in pages(text, args.pages, rng):
            decoded, codec = decode_html(page.encode(charset), None)
            chosen[codec] += 1
            wrong += decoded != page
            decoded, codec = decode_html(page.encode(charset), None, url)
            country_chosen[codec] += 1
            country_wrong += decoded != page
            if charset in FOREIGN:
                foreign_total += 1
                foreign_url = f"http://www.example.{FOREIGN[charset]}/page"
                foreign_wrong += decode_html(page.encode(charset), None, foreign_url)[0] != page
            own = MULTI_BYTE.get(charset, charset)  # declared rightly
            declared_wrong += decode_html(page.encode(charset), own)[0] != page
            for label in WRONG_LABELS:  # declared, wrongly
                if normalise_charset(label) != charset:
                    mislabelled_total += 1
                    mislabelled_wrong += decode_html(page.encode(charset), label)[0] != page
            if charset in MULTI_BYTE:  # declared, and cut inside its last character
                head = page.removesuffix("</p></body></html>").rstrip(".")  # ends in a letter
                cut = head.encode(charset)[:-1]
                body = head[:-1] + "\ufffd"
                cut_total += 1
                label = MULTI_BYTE[charset]
                cut_wrong += decode_html(cut, label) != (body, normalise_charset(label))
        wrong_total += wrong
        country_wrong_total += country_wrong
        codecs_chosen = ", ".join(f"{c} {n}" for c, n in chosen.most_common())
        codecs_country = ", ".join(f"{c} {n}" for c, n in country_chosen.most_common())
        print(
            f"{language:10} {charset:10} {wrong:3}/{args.pages}  {codecs_chosen} | "
            f"{COUNTRY[language]}: {country_wrong}/{args.pages}  {codecs_country}"
        )
    total = args.pages * len(SENTENCES)
    print(f"undeclared pages decoded wrong: {wrong_total}/{total}")
    print(
        f"undeclared pages on their country's domain decoded wrong: {country_wrong_total}/{total}"
    )
    print(
        "undeclared Latin-script pages on a country's domain with another code, decoded wrong: "
        f"{foreign_wrong}/{foreign_total}"
    )
    print(f"pages declared in their own charset, decoded wrong: {declared_wrong}/{total}")
    print(f"declared pages cut inside a character, decoded wrong: {cut_wrong}/{cut_total}")
    print(
        f"pages declared in another charset, decoded wrong: {mislabelled_wrong}/{mislabelled_total}"
    )


if __name__ == "__main__":
    main()
