# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploratory data analysis
#
# Who interacts with what, and how they rate it: interactions by **gender**, the most popular **categories**, ratings by **gender x category**, the **marketing-bias** tests where the data has product-image segments (Electronics), ratings over the **years**, and the profile every recommender paper reports (size, **sparsity**, **long tail**). All logic lives in `helpers/data/eda.py`, `helpers/data/market_bias.py` and their figures in `helpers/plots/`; this notebook only calls them. Each figure is also saved as PNG under `OUTPUT_DIR/figures/`, and the key numbers go to `OUTPUT_DIR/metrics.json` under `eda`.

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from helpers.data import eda, load, market_bias, sample_users
from helpers.notebooks import record_metrics
from helpers.plots import eda as plots
from helpers.plots import market_bias as bias_plots
from helpers.plots import save_figure

# %matplotlib inline

# %% tags=["parameters"]
DATASET = "ml-100k"  # ml-100k (offline default) | electronics (downloaded on first use) | csv:PATH
OUTPUT_DIR = "scratch"  # figures/ and metrics.json go here; make run passes reports (the committed results)
SAMPLE = 0  # interactions to keep (whole users, drawn at random); 0 keeps all. Smoke tests use 2000
SEED = 0  # seed of the user sample
TOP_CATEGORIES = 15  # categories in the popularity chart (the gender x category figure shows the top 10)

# %% [markdown]
# ## The data
#
# One row per interaction in the canonical schema of `helpers.data`: `user_id, item_id, rating, timestamp` plus side information (`user_gender`, `item_category`, `year`). For ml-100k the category is the movie's genres (a movie counts in each of them) and the year is its release year; for Electronics they are the product category and the review year, and gender is the dataset's `user_attr`.

# %%
df = sample_users(load(DATASET), SAMPLE, seed=SEED)
figures = {}
df.head()

# %% [markdown]
# ## Size and sparsity
#
# The table below is the profile a recommender paper reports. Read the density: the share of the user x item matrix that is observed. A dataset where every user has many interactions (MovieLens keeps only users with at least 20 ratings) is dense by recommender standards; one where most users rate a single product (Electronics) is far sparser. The sentence above the table gives this dataset's numbers.

# %%
profile = eda.dataset_profile(df)
display(Markdown(eda.profile_sentence(profile, DATASET)))
eda.profile_table(profile)

# %% [markdown]
# ## 1. Interactions by gender
#
# The bars count interactions per user gender; the labels give each gender's share, its number of users and interactions per user. The sentence under the table compares the shares in percentage points and says how much of the difference comes from the number of users and how much from each user's activity.

# %%
by_gender = eda.interactions_by_gender(df)
display(by_gender.round(3))
display(Markdown(eda.gender_sentence(by_gender)))
figures["interactions_by_gender"] = plots.gender_bar_figure(by_gender, DATASET)

# %% [markdown]
# ## 2. Most popular categories
#
# Categories ranked by interactions, largest first, each bar labelled with its count; the sentence says which lead and by how much.

# %%
categories = eda.top_categories(df, TOP_CATEGORIES)
display(categories)
display(Markdown(eda.categories_sentence(categories, len(df))))
figures["top_categories"] = plots.category_bar_figure(categories, DATASET)

# %% [markdown]
# ## 3. Rating by gender x category
#
# For each of the 10 most popular categories, the mean rating of women and of men with its 95% interval (left; the axis spans the data, not the whole rating scale, so gaps of a tenth of a star show) and the female - male gap with its Welch interval (right, from 0): categories are sorted by the gap, the ones women rate higher first. Each rating counts as one observation, so the intervals are a little narrow for heavy raters. The table lists the gaps, largest first, and the sentence under it reads them.

# %%
gender_means = eda.gender_category_means(df, n_categories=10)
gaps = eda.gender_category_gaps(df, n_categories=10)
figures["rating_by_gender_category"] = plots.gender_category_figure(gender_means, gaps, DATASET)
display(gaps.round(3))
display(Markdown(eda.gaps_sentence(gaps)))

# %% [markdown]
# ## 4. Marketing bias: product-image segment x user gender
#
# The question of Wan et al. ("Addressing Marketing Bias in Product Recommendations", WSDM 2020): each Electronics product is placed in a segment by the people in its images (`model_attr`: Female, Male, Female&Male); do women and men buy different segments? The first table counts interactions per segment (rows) and known user gender (columns); most Electronics users give no gender and are left out. `share_of_segment` is each gender's part of a segment (rows sum to 1), `share_of_gender` the segment's part of each gender's interactions (columns sum to 1). The bars show the latter, so genders of different sizes compare: where the female bar is taller than the male one, women put more of their purchases into that segment, and the label under each segment gives the difference in percentage points. The second table holds the adjusted standardized residuals of the chi-square test: about N(0, 1) under independence, so a cell above +1.96 is bought more than independence predicts and one below -1.96 less. A dataset without product segments (ml-100k) prints one line and skips this section.

# %%
has_segments = market_bias.has_market_segments(df)
market_record = {}
if has_segments:
    segment_counts = market_bias.segment_gender_counts(df)
    segment_test = market_bias.segment_gender_test(segment_counts)
    display(segment_counts.round(3))
    display(pd.DataFrame(segment_test["residuals"]).round(2))
    figures["segment_by_gender"] = bias_plots.segment_gender_figure(segment_counts, DATASET)
else:
    print(f"{DATASET} has no product segments (needs model_attr and known user_gender): marketing-bias section skipped")

# %% [markdown]
# Do women and men also *rate* the segments differently? The table gives the mean rating per segment x gender with its 95% interval and count; the figure draws the same points with their intervals (its y axis spans the data, not the whole 1-5 scale, so gaps of a tenth of a star show). The two-way ANOVA (type II) under it tests segment, gender and their interaction: a significant interaction means the gender gap in ratings changes from one segment to another. The sentence at the end states, from the numbers above, what the chi-square test and the ANOVA find.

# %%
if has_segments:
    rating_means = market_bias.mean_rating_table(df)
    anova = market_bias.rating_anova(df)
    display(rating_means.round(3))
    display(anova.round(4))
    figures["mean_rating_by_segment_gender"] = bias_plots.mean_rating_figure(rating_means, DATASET)
    print(market_bias.market_bias_sentence(segment_test, anova))
    market_record = {"counts": segment_counts["interactions"].to_dict(), "chi2_test": segment_test,
                     "mean_rating": rating_means.to_dict(orient="records"), "anova": anova.to_dict(orient="index"),
                     "anova_interaction": anova.attrs["interaction"],
                     "left_out_unknown_gender": anova.attrs["left_out_unknown_gender"]}

# %% [markdown]
# ## 5. Ratings over the years
#
# Ratings by the item's year (release year for movies, review year for Electronics), in periods of 1, 5, 10 or 20 years, the shortest that keeps the plot readable. Every period from the first year to the last is shown, none dropped: the number above each box says how many ratings it rests on, and a box on fewer than 20 ratings is drawn hollow. Where older items are rated higher than recent ones, the usual reading is selection: viewers seek out the old titles that are still remembered, while recent ones are watched whatever their quality. The sentence under the plot says which way this dataset goes.

# %%
year_rows = eda.ratings_by_year(df)
figures["ratings_over_years"] = plots.year_boxplot(year_rows, DATASET)
display(Markdown(eda.years_sentence(year_rows)))

# %% [markdown]
# ## Rating distribution
#
# How often each rating value is given. Ratings usually lean positive: people mostly rate what they chose to watch or buy, so low ratings are rare; the sentence gives this dataset's figures.

# %%
dist = eda.rating_distribution(df)
display(dist)
display(Markdown(eda.rating_distribution_sentence(dist, profile)))
figures["rating_distribution"] = plots.rating_distribution_figure(dist, DATASET)

# %% [markdown]
# ## Long tail
#
# User activity and item popularity on log-log axes, most active first. The fall of the item curve is the long tail: a few items collect a large share of all interactions (the titles give the share held by the top 20%), which is why ranking by popularity is a strong baseline and why re-ranking for the tail matters.

# %%
figures["long_tail"] = plots.long_tail_figure(eda.activity_counts(df), DATASET)
display(Markdown(eda.long_tail_sentence(profile)))

# %% [markdown]
# ## Record
#
# Every figure is saved as PNG and the key numbers are recorded under `eda` in `metrics.json` (with a `market_bias` part when the dataset has product segments), where tests and the README read them by name.

# %%
saved = {name: str(save_figure(fig, name, OUTPUT_DIR)) for name, fig in figures.items()}
record_metrics("eda", {
    "dataset": DATASET, "sample": SAMPLE, "seed": SEED, "profile": profile,
    "by_gender": by_gender.set_index("gender").to_dict(orient="index"),
    "top_categories": categories.set_index("item_category")["interactions"].to_dict(),
    "gender_category_gaps": gaps.set_index("item_category")["gap_female_minus_male"].to_dict(),
    "figures": saved,
    **({"market_bias": market_record} if market_record else {}),
}, path=Path(OUTPUT_DIR) / "metrics.json")
saved
