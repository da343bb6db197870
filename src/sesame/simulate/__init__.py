"""Synthetic upstream deliveries for every source declared in `sesame.schemas`.

The simulator keeps a hidden creditworthiness per user and lets it drive every source: shopping
(`orders`), wallet movements (`payments`), credit-product bills (`bills`), the social graph
(`social_edges`) and the court list (`blacklist`), beside the daily KYC snapshot (`users`).

Model, in short:

* The platform opened `_PLATFORM_DAYS` before the end and has grown steadily since: registrations
  rise by about 20% a year, so most users registered years before the window, some during it (about
  1.5% of the population in a 30-day window, a fifth in a 490-day one), and the flow of newcomers
  does not jump at the window's start.
* Users live in communities of 20-200 members that mostly share a city. Creditworthiness
  ``z`` is standard normal and partly shared within a community, so friends resemble each other.
  Gender and birth year are drawn independently of ``z``; income barely depends on age.
* The creditworthiness a user shows on a day is ``c = 0.8 z + 0.6 drift`` where ``drift`` is a slow
  AR(1) process, partly shared by the community (local economic ups and downs). A two-state
  "distress" chain is entered far more often and left more slowly by users with a low ``c`` (about
  2.5% of users are distressed on a given day, two thirds of them from the lowest tenth of ``c``);
  while distressed, salaries mostly stop, wallets drain, friends lend money, orders get cancelled.
* Idiosyncratic shocks hit anyone, whatever ``z`` (about 3.5% of users a year, 2% in one on a given
  day): job loss (salary stops), illness (no visible sign) and fraud (the wallet is emptied once).
  They last months and push some otherwise good users into arrears, those with less of a cushion
  (low ``c``) more often.
* Credit products: about a third of the users open one within weeks of registering; the others may
  open one on any later day, with a small hazard (about a third of those without a product open one
  within a year) that is several times higher in hardship, when money is short. New-to-credit users
  therefore keep appearing, at a steady rate, and an account's first six months are riskier (bills
  missed more often, paid more slowly).
* Bills are missed now and then by anyone and mostly paid within days; users in hardship miss
  most bills and cure slowly, collections step up at 90 days past due, and a bill still unpaid at
  181 days is charged off (never paid; the account is closed for a while). Low ``c`` makes every
  step worse. A hidden payment discipline ("grit"), seen in no source but the bills, lets some weak
  users pay through hard times and makes others late, so behaviour is only a noisy proxy of
  outcomes and prior delinquency predicts, without deciding, the next one.
* Observable traits (income, cancellations and returns, balances, utility regularity, identity
  checks) follow ``z`` loosely, with wide individual noise.
* Credit bills are simulated for a year before the window (a warm-up), and the first delivery
  carries that history, so credit-history features are informative from the first day.

Calibration, measured on ``generate(20000, 490, date(2025, 3, 31), seed=7)`` at the observation date
90 days into the window (2024-02-26), with the platform's performance definition (credit file: a
statement on record; in default: a bill unpaid 90+ days past its due date; bad: a bill reported 90+
days past due within the next 365 days):

* credit-file users not in default: 3.6% go bad (11,605 users); the hidden ``c`` on that day ranks
  them with an AUC of 0.85; the worst days past due of the last year with an AUC of 0.78 (16% of
  those 30+ days late go bad, 1.9% of the others);
* 26.6% of the registered users have no credit file; 33.9% of them open a product within the year,
  and 6.5% of those new-to-credit users go bad (``c`` AUC about 0.8);
* the same figures at observation dates 270 days earlier to 125 days later stay within 3.4-3.8%,
  26.5-28%, 33-35% and 5.5-7%;
* charged-off users (in default for good) are 0.3% of the product holders at the end of the run,
  users in default 0.7% of those with a credit file.

Generation and writing are separate: :func:`generate` yields one pandas DataFrame per source and
day, in schema column order; :func:`sesame.deliveries.write_delivery` writes one of them in the declared format.
Anything that alters data on its way (for instance injecting dirt) fits between the two.

Every random draw comes from a generator seeded by ``(seed, purpose, day)``, so the same arguments
give byte-identical files.

Parts: :mod:`~sesame.simulate.parameters` (vocabularies and rates), :mod:`~sesame.simulate.world` (the
population, graph and state, stepped day by day), :mod:`~sesame.simulate.frames` (each source's frame of a
day) and :mod:`~sesame.simulate.writing` (:func:`generate` and :func:`simulate`).
"""

from sesame.simulate.writing import SIMULATION_FILE, SUCCESS_MARKER, generate, simulate

__all__ = ["SIMULATION_FILE", "SUCCESS_MARKER", "generate", "simulate"]
