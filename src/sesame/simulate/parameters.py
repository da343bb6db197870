"""The simulated world's fixed vocabularies (cities, names, occupations, order categories, court-list reasons) and
the parameters of its behaviour (growth, income, shocks, distress, missed bills, cures, account openings); the
model they shape is described in :mod:`sesame.simulate`."""

from __future__ import annotations

from datetime import date

import numpy as np

from sesame.schemas import ESSENTIAL_CATEGORIES, LOCAL_SERVICE_CATEGORIES, ORDER_CATEGORIES

WARMUP_DAYS = 365  # credit history simulated (and delivered on the first day) before the window
MAX_DPD_REPORTED = 181  # a bill is charged off after this
_EPOCH = date(1970, 1, 1).toordinal()
_NEVER = np.iinfo(np.int64).max // 2  # the opening day of an account not (yet) opened

# --------------------------------------------------------------------------------------------------
# Static vocabularies
# --------------------------------------------------------------------------------------------------

# (city, court code, tier)
CITIES: tuple[tuple[str, str, int], ...] = (
    ("Beijing", "BJ", 1),
    ("Shanghai", "SH", 1),
    ("Guangzhou", "GZ", 1),
    ("Shenzhen", "SZ", 1),
    ("Hangzhou", "HZ", 2),
    ("Chengdu", "CD", 2),
    ("Wuhan", "WH", 2),
    ("Nanjing", "NJ", 2),
    ("Xi'an", "XA", 2),
    ("Chongqing", "CQ", 2),
    ("Suzhou", "SU", 2),
    ("Tianjin", "TJ", 2),
    ("Luoyang", "LY", 3),
    ("Guilin", "GL", 3),
    ("Yichang", "YC", 3),
    ("Shantou", "ST", 3),
    ("Yancheng", "YN", 3),
    ("Zhanjiang", "ZJ", 3),
    ("Zhoukou", "ZK", 4),
    ("Shangqiu", "SQ", 4),
    ("Heze", "HE", 4),
    ("Anshun", "AS", 4),
    ("Tianshui", "TS", 4),
    ("Qujing", "QJ", 4),
)
# the first four digits of each city's administrative division code (GB/T 2260), for identity card numbers
_CITY_DIVISION = {
    "Beijing": 1101,
    "Shanghai": 3101,
    "Guangzhou": 4401,
    "Shenzhen": 4403,
    "Hangzhou": 3301,
    "Chengdu": 5101,
    "Wuhan": 4201,
    "Nanjing": 3201,
    "Xi'an": 6101,
    "Chongqing": 5001,
    "Suzhou": 3205,
    "Tianjin": 1201,
    "Luoyang": 4103,
    "Guilin": 4503,
    "Yichang": 4205,
    "Shantou": 4405,
    "Yancheng": 3209,
    "Zhanjiang": 4408,
    "Zhoukou": 4116,
    "Shangqiu": 4114,
    "Heze": 3717,
    "Anshun": 5204,
    "Tianshui": 6205,
    "Qujing": 5303,
}
_TIER_SHARE = {1: 0.20, 2: 0.35, 3: 0.25, 4: 0.20}
_TIER_INCOME = {1: 0.40, 2: 0.15, 3: -0.10, 4: -0.28}  # log-income shift
_TIER_LOCAL = {1: 0.60, 2: 0.30, 3: 0.00, 4: -0.35}  # propensity for local on-demand services

SURNAMES = (
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
    "Gao",
    "Luo",
    "Zheng",
    "Liang",
    "Xie",
    "Song",
    "Tang",
    "Han",
    "Feng",
    "Deng",
    "Cao",
    "Peng",
    "Zeng",
    "Xiao",
    "Tian",
    "Dong",
    "Pan",
    "Yuan",
    "Cai",
    "Jiang",
)
_SURNAME_WEIGHT = np.linspace(3.0, 0.6, len(SURNAMES))
GIVEN_F = (
    "Fang",
    "Hong",
    "Juan",
    "Li",
    "Ling",
    "Mei",
    "Min",
    "Na",
    "Ping",
    "Qian",
    "Qing",
    "Rui",
    "Shan",
    "Ting",
    "Wen",
    "Xia",
    "Xin",
    "Xue",
    "Yan",
    "Yi",
    "Ying",
    "Yu",
    "Yun",
    "Jing",
    "Hui",
    "Lan",
)
GIVEN_M = (
    "Bin",
    "Bo",
    "Chao",
    "Cheng",
    "Feng",
    "Gang",
    "Hao",
    "Hui",
    "Jian",
    "Jie",
    "Jun",
    "Kai",
    "Lei",
    "Long",
    "Ming",
    "Peng",
    "Qiang",
    "Tao",
    "Wei",
    "Wen",
    "Xiang",
    "Yang",
    "Yong",
    "Zhi",
    "Hong",
    "Guo",
)
OCCUPATIONS = (
    "factory_worker",
    "driver",
    "sales",
    "service_worker",
    "office_worker",
    "teacher",
    "nurse",
    "engineer",
    "civil_servant",
    "manager",
    "self_employed",
    "freelancer",
)
# log-income slope of each occupation's logit (higher income -> more likely professional roles)
_OCC_BASE = np.array([0.6, 0.3, 0.5, 0.6, 0.8, 0.0, -0.2, 0.0, -0.3, -0.8, 0.2, -0.2])
_OCC_SLOPE = np.array([-1.6, -1.0, -0.3, -1.5, 0.2, 0.4, 0.2, 1.6, 0.9, 2.4, 0.5, 0.4])
_NO_SALARY_OCC = ("self_employed", "freelancer", "student")

BLACKLIST_REASONS = (
    "loan default",
    "failure to perform judgment",
    "contract dispute",
    "credit card default",
    "guarantee liability",
)

# order categories: (median CNY, log sigma, return propensity)
_CAT_AMOUNT = {
    "electronics": (650.0, 0.95, -2.4),
    "apparel": (160.0, 0.70, -1.9),
    "groceries": (85.0, 0.60, -4.5),
    "home": (190.0, 0.80, -3.0),
    "books": (48.0, 0.50, -3.6),
    "travel": (1100.0, 0.80, -3.4),
    "food_delivery": (36.0, 0.45, -5.5),
    "flowers": (150.0, 0.50, -4.6),
    "beauty": (210.0, 0.60, -4.6),
    "cleaning": (150.0, 0.40, -5.0),
    "car_repair": (580.0, 0.80, -5.0),
}
_CAT_INDEX = {c: i for i, c in enumerate(ORDER_CATEGORIES)}
_CAT_BASE_WEIGHT = {
    "electronics": 0.8,
    "apparel": 1.6,
    "groceries": 2.4,
    "home": 1.0,
    "books": 0.5,
    "travel": 0.3,
    "food_delivery": 3.0,
    "flowers": 0.25,
    "beauty": 0.6,
    "cleaning": 0.35,
    "car_repair": 0.2,
}
_DOW_ORDERS = np.array([0.94, 0.93, 0.95, 0.98, 1.08, 1.14, 1.02])  # Monday..Sunday
_DOW_MERCHANT = np.array([0.97, 0.96, 0.97, 0.99, 1.05, 1.10, 1.00])
_NORMAL_HOURS = np.array(
    [
        1,
        0.6,
        0.3,
        0.2,
        0.2,
        0.4,
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
        5.5,
        5.5,
        5.0,
        4.5,
        4.5,
        4.6,
        4.8,
        5.0,
        5.8,
        6.5,
        6.8,
        5.5,
        3.0,
    ]
)
_MEAL_HOURS = np.array(
    [
        0.6,
        0.3,
        0.1,
        0.1,
        0.1,
        0.2,
        0.5,
        1.5,
        1.5,
        1.2,
        2.0,
        8.0,
        10.0,
        4.0,
        1.5,
        1.2,
        1.8,
        6.0,
        9.0,
        6.0,
        3.0,
        2.5,
        1.8,
        1.0,
    ]
)
_ORDER_SUBGROUPS = (  # (essential, local)
    [c for c in ORDER_CATEGORIES if c not in ESSENTIAL_CATEGORIES and c not in LOCAL_SERVICE_CATEGORIES],
    [c for c in ORDER_CATEGORIES if c not in ESSENTIAL_CATEGORIES and c in LOCAL_SERVICE_CATEGORIES],
    [c for c in ORDER_CATEGORIES if c in ESSENTIAL_CATEGORIES and c not in LOCAL_SERVICE_CATEGORIES],
    [c for c in ORDER_CATEGORIES if c in ESSENTIAL_CATEGORIES and c in LOCAL_SERVICE_CATEGORIES],
)

_GROWTH = 0.0005  # registrations per day grow by this share a day (about 20% a year)
_PLATFORM_DAYS = 4000  # the first users registered this many days before the end
_INCOME_REF = 6500.0  # CNY per month, the median salary the shapes below are scaled around
_MAX_AMOUNT_CENTS = 100_000_000  # payments.amount max (1,000,000 CNY)

# idiosyncratic shocks (job loss, illness, fraud): monthly probabilities of entering and leaving,
# independent of creditworthiness, and the share of each kind
_SHOCK_KINDS = ("job_loss", "illness", "fraud")
_SHOCK_SHARE = np.array([0.45, 0.35, 0.20])
_SHOCK_ENTER, _SHOCK_LEAVE = 0.003, 0.15
_JOB_LOSS, _ILLNESS, _FRAUD = 1, 2, 3
# distress: monthly logits of entering (a - b c) and leaving (a + b c)
_DISTRESS_ENTER = (-6.5, 1.9)
_DISTRESS_LEAVE = (-0.6, 0.6)
# missing a bill at statement: logit a - b c - g grit, in hardship and otherwise
_MISS_HARD = (0.0, 0.8, 0.4)
_MISS_NORMAL = (-3.3, 0.8, 0.3)
# daily hazard of paying an overdue bill: base * exp(b c + g grit), in a shock, in distress, otherwise
_CURE_SHOCK = (0.012, 0.8, 0.4)
_CURE_DISTRESS = (0.025, 0.6, 0.3)
_CURE_NORMAL = (0.12, 0.5, 0.3)
_COLLECTIONS_BOOST = 4.0
# credit products: a share of users opens one within weeks of registering (mean delay in days); the
# others may open one any day later, with a daily hazard base * exp(-b c) * (1 + boost in hardship)
_OPEN_QUICK, _OPEN_QUICK_DAYS = 0.35, 35.0
_OPEN_HAZARD = (0.0009, 0.0, 6.0)
# an account's first months (days since opening): its statements are missed more often (a shift of the
# miss logit) and its overdue bills paid more slowly (a factor on the hazard)
_NEW_ACCOUNT = (180, 0.8, 0.5)

_ORDER_STATUS_NAMES = ("completed", "cancelled", "returned")
_PAY = {"salary": 0, "transfer": 1, "merchant": 2, "utility": 3, "wealth_buy": 4, "wealth_redeem": 5}
