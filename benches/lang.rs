//! Language identification: `cargo bench --bench lang`.
//!
//! Prints, for the shared labeled data sets (`../shared/data/*.csv`, nearly all English) and
//! for comments written for this bench in twelve other languages: the time per comment of
//! `rules::lang::detect` (one core, best of three passes), what it detected (how many
//! unknown, and of them how many it still rules out as English, how many in each language),
//! and the cost of a `not_languages` rule in the rule
//! engine compared with the same corpus without it.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use igmod::rules::lang::detect;
use igmod::rules::{Action, CommentView, ConditionSpec, RuleSet, RuleSpec};

/// (expected code, comment): an order question, a complaint or a compliment, and a scam of
/// the kind brand accounts get, per language, as commenters write them.
const WRITTEN: &[(&str, &str)] = &[
    (
        "es",
        "Hola, ¿cuándo vuelve a estar disponible la talla pequeña? Gracias",
    ),
    (
        "es",
        "Gané 3000 dólares en una semana con la señora Ana, escríbele por WhatsApp ahora",
    ),
    ("es", "Me encanta este color, ¿lo tienen en talla mediana?"),
    (
        "pt",
        "Quanto custa o frete para Portugal? Quero encomendar duas peças",
    ),
    (
        "pt",
        "Ganhei muito dinheiro com a gestora Maria, chama ela no WhatsApp agora mesmo",
    ),
    (
        "pt",
        "Sigam minha página para ganhar seguidores grátis todos os dias",
    ),
    (
        "id",
        "Pesanan saya belum datang juga, tolong dicek ya kak, terima kasih",
    ),
    (
        "id",
        "Saya dapat banyak uang dari investasi ini, hubungi dia lewat WhatsApp sekarang",
    ),
    (
        "id",
        "Terima kasih kak, barangnya sudah sampai dan bagus sekali",
    ),
    (
        "fr",
        "Bonjour, je n'ai toujours pas reçu ma commande, pouvez-vous vérifier ?",
    ),
    (
        "fr",
        "Gagnez de l'argent facilement avec mon conseiller, contactez-le sur Telegram",
    ),
    (
        "fr",
        "J'adore cette couleur, est-ce que vous livrez en France ?",
    ),
    (
        "de",
        "Meine Bestellung ist immer noch nicht angekommen, könnt ihr bitte nachsehen?",
    ),
    (
        "de",
        "Ich habe mit diesem Trader tausend Euro verdient, schreibt ihm auf WhatsApp",
    ),
    ("de", "Ich liebe diese Farbe, gibt es das auch in Größe M?"),
    (
        "it",
        "Ho ordinato due settimane fa e non è ancora arrivato niente, potete controllare?",
    ),
    (
        "it",
        "Ho guadagnato tantissimo con questa signora, scrivetele subito su WhatsApp",
    ),
    (
        "it",
        "Adoro questo colore, spedite anche in Italia? Lo voglio comprare subito",
    ),
    (
        "ru",
        "Заказ до сих пор не пришёл, проверьте пожалуйста, спасибо",
    ),
    (
        "ru",
        "Я заработала много денег с этим брокером, пишите ей в телеграм прямо сейчас",
    ),
    ("ru", "Очень красивый цвет, а есть размер побольше?"),
    (
        "tr",
        "Siparişim hala gelmedi, lütfen kontrol eder misiniz? Teşekkürler",
    ),
    (
        "tr",
        "Bu hanımefendi sayesinde çok para kazandım, hemen WhatsApp'tan yazın",
    ),
    (
        "tr",
        "Bu rengi çok sevdim, daha büyük beden var mı? Hemen sipariş vermek istiyorum",
    ),
    (
        "ar",
        "طلبي لم يصل حتى الآن، هل يمكنكم التحقق من ذلك من فضلكم؟",
    ),
    (
        "ar",
        "ربحت الكثير من المال مع هذه الشركة، تواصل معي على الواتساب الآن",
    ),
    ("ar", "أحب هذا اللون كثيرا، هل يوجد مقاس أكبر؟"),
    ("hi", "मेरा ऑर्डर अभी तक नहीं आया है, कृपया जांच करें, धन्यवाद"),
    (
        "hi",
        "मैंने इस निवेश से बहुत पैसा कमाया, अभी उनसे व्हाट्सएप पर बात करें",
    ),
    ("hi", "मुझे यह रंग बहुत पसंद है, क्या बड़ा साइज़ मिलेगा?"),
    (
        "vi",
        "Đơn hàng của tôi vẫn chưa được giao, shop kiểm tra giúp tôi với",
    ),
    (
        "vi",
        "Tôi đã kiếm được rất nhiều tiền nhờ chị ấy, nhắn tin Zalo ngay nhé",
    ),
    ("vi", "Tôi rất thích màu này, có size lớn hơn không shop?"),
    (
        "tl",
        "Hindi pa dumarating ang order ko, pakicheck naman po, salamat",
    ),
    (
        "tl",
        "Kumita ako ng malaking pera dahil sa kanya, i-message niyo siya sa WhatsApp",
    ),
    (
        "tl",
        "Ang ganda ng kulay nito, may mas malaking size po ba kayo?",
    ),
];

fn read_csv(path: &Path) -> Vec<String> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared data sets sit beside the repository)",
            path.display()
        )
    });
    let headers = reader.headers().expect("csv headers").clone();
    let text = headers
        .iter()
        .position(|h| h == "text")
        .expect("a text column");
    reader
        .records()
        .map(|r| r.expect("csv row").get(text).unwrap_or("").to_string())
        .collect()
}

/// Best of three passes over `texts`, per comment.
fn time_per_comment(texts: &[&str], mut f: impl FnMut(&str)) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for t in texts {
            f(black_box(t));
        }
        best = best.min(start.elapsed());
    }
    let n = u32::try_from(texts.len().max(1)).unwrap_or(u32::MAX);
    best / n
}

fn main() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut all: Vec<String> = Vec::new();
    println!("language identification (whatlang via rules::lang::detect), one core\n");
    let english = [igmod::rules::Language::parse("en").expect("en is known")];
    println!(
        "| data set | comments | µs per comment | unknown | of them, not English | en | another language |"
    );
    println!("|---|---|---|---|---|---|---|");
    for name in ["youtube-train.csv", "scamspot-train.csv"] {
        let texts = read_csv(&shared.join(name));
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let per = time_per_comment(&refs, |t| {
            black_box(detect(t));
        });
        let (mut unknown, mut not_en, mut en, mut other) = (0usize, 0usize, 0usize, Vec::new());
        for t in &refs {
            let found = detect(t);
            match found.code() {
                None => {
                    unknown += 1;
                    not_en += usize::from(found.is_outside(&english));
                }
                Some("en") => en += 1,
                Some(code) => other.push(code),
            }
        }
        other.sort_unstable();
        println!(
            "| {name} | {} | {:.1} | {unknown} | {not_en} | {en} | {} ({}) |",
            refs.len(),
            per.as_secs_f64() * 1e6,
            other.len(),
            other.join(" ")
        );
        all.extend(texts);
    }

    println!("\n| written comments | right | unknown | wrong |");
    println!("|---|---|---|---|");
    let mut codes: Vec<&str> = WRITTEN.iter().map(|(c, _)| *c).collect();
    codes.dedup();
    let (mut right_all, mut unknown_all, mut wrong_all) = (0, 0, 0);
    for code in codes {
        let (mut right, mut unknown, mut wrong) = (0, 0, Vec::new());
        for (_, text) in WRITTEN.iter().filter(|(c, _)| *c == code) {
            match detect(text).code() {
                Some(c) if c == code => right += 1,
                None => unknown += 1,
                Some(c) => wrong.push(c),
            }
        }
        println!(
            "| {code} | {right} | {unknown} | {} {} |",
            wrong.len(),
            wrong.join(" ")
        );
        right_all += right;
        unknown_all += unknown;
        wrong_all += wrong.len();
    }
    println!("| all | {right_all} | {unknown_all} | {wrong_all} |");
    let written: Vec<&str> = WRITTEN.iter().map(|(_, t)| *t).collect();
    let per = time_per_comment(&written, |t| {
        black_box(detect(t));
    });
    println!(
        "written comments: {:.1} µs per comment",
        per.as_secs_f64() * 1e6
    );

    // The rule engine with and without a language condition, over the shared comments.
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let words = RuleSpec::new(
        "scam",
        Action::Delete,
        ConditionSpec {
            words: vec!["forex".into(), "crypto signal".into()],
            ..ConditionSpec::default()
        },
    );
    let foreign = RuleSpec::new(
        "foreign",
        Action::Hide,
        ConditionSpec {
            not_languages: vec!["en".into(), "es".into()],
            ..ConditionSpec::default()
        },
    );
    for (label, specs) in [
        ("words rule alone", vec![words.clone()]),
        ("words rule + not_languages rule", vec![words, foreign]),
    ] {
        let rules = RuleSet::compile(&specs).expect("rules compile");
        let per = time_per_comment(&refs, |t| {
            black_box(rules.decide(&CommentView::new(t, Some("someone"))));
        });
        println!(
            "{label}: {:.0} comments/s ({:.2} µs per comment)",
            1.0 / per.as_secs_f64().max(1e-12),
            per.as_secs_f64() * 1e6
        );
    }
}
